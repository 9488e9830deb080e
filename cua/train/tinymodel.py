"""A tiny, randomly initialised Qwen2.5-VL built fully offline, for tests and demos.

:func:`build_tiny_model` trains a small byte-level BPE on a built-in UI-TARS-style corpus, adds the
Qwen special tokens and chat template, and saves a ``Qwen2_5_VLProcessor`` plus a
``Qwen2_5_VLForConditionalGeneration`` (hidden size 64, 2 layers, a 2-block vision tower) that loads
with ``from_pretrained`` and is served by ``transformers serve DIR``. Same seed, same bytes.
Needs the ``train`` extra (torch, torchvision, transformers).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from cua.formats.uitars import UITars10, UITars15

PATCH = 14
MERGE = 2
UNIT = PATCH * MERGE  # pixels per side of one visual token
MAX_PIXELS = 64 * UNIT * UNIT  # a 1920x1080 screenshot -> 10x20 patches -> 50 visual tokens
MIN_PIXELS = 4 * UNIT * UNIT

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

# Qwen2-VL's template; image blocks may be {"type": "image"}, {"type": "image_url"} or {"image": ...}.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_TASKS = [
    "Open the file report.ods in LibreOffice Calc and sum column B into cell B12.",
    "In LibreOffice Writer, make the title bold, center it and save the document as PDF.",
    "Insert a new slide in LibreOffice Impress with the title 'Quarterly Results'.",
    "Sort the spreadsheet by the Date column in ascending order and freeze the first row.",
    "Change the font of the selected paragraph to Liberation Serif, size 12.",
    "Create a chart from the range A1:D20 on Sheet1 and place it on a new sheet.",
    "Rename the sheet 'Sheet2' to 'Summary' and apply a currency format to column C.",
    "Find and replace every occurrence of 'colour' with 'color' in the whole document.",
    "Export the presentation to PDF in the Documents folder and close LibreOffice.",
    "Add a header with the page number and insert a table with 3 columns and 4 rows.",
]
_WORDS = (
    "LibreOffice Calc Writer Impress Draw Base Math spreadsheet document presentation slide "
    "cell column row sheet formula =SUM(B2:B11) =AVERAGE(A1:A9) =IF(C2>0;\"yes\";\"no\") "
    "=VLOOKUP(A2;Sheet2.A1:B9;2;0) menu File Edit View Insert Format Styles Sheet Data Tools "
    "Window Help toolbar sidebar Navigator dialog OK Cancel Apply Save As Export PDF Open Close "
    "Bold Italic Underline Font Size Paragraph Alignment Left Center Right Justify Table Chart "
    "Filter Sort Ascending Descending AutoFilter Pivot Print Preview Undo Redo Copy Paste Cut "
    "Select All Find Replace Zoom Page Header Footer Number Currency Percent Date Time Text Box "
    "screenshot window button checkbox textbox dropdown tab scrollbar cursor mouse keyboard the "
    "a an of to in on at for with and or is are was be this that it I will now next then click "
    "type press scroll drag open save close select enter name value field task done finished"
)
_KEYS = ["ctrl c", "ctrl v", "ctrl s", "ctrl z", "ctrl a", "ctrl shift s", "alt f4", "enter",
         "tab", "escape", "ctrl home", "ctrl end", "shift tab", "ctrl b", "ctrl i", "f2", "delete"]


def _corpus() -> list[str]:
    """The built-in training text: a UI-TARS prompt, tasks, thoughts and actions (no randomness)."""
    prompt = UITars15().prompt("")
    lines = [prompt, UITars10().prompt(""), _WORDS, "0123456789 " * 4,
             "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ " * 4]
    coords = itertools.product(range(7, 1920, 97), range(13, 1080, 61))
    for i, (x, y) in enumerate(coords):
        task = _TASKS[i % len(_TASKS)]
        key = _KEYS[i % len(_KEYS)]
        action = [
            f"click(start_box='({x},{y})')",
            f"click(start_box='<|box_start|>({x},{y})<|box_end|>')",
            f"left_double(start_box='({x},{y})')",
            f"right_single(start_box='({y},{x})')",
            f"drag(start_box='({x},{y})', end_box='({y},{x})')",
            f"hotkey(key='{key}')",
            f"type(content='{task.split()[i % 5]} {x}\\n')",
            f"scroll(start_box='({x},{y})', direction='{('up', 'down', 'left', 'right')[i % 4]}')",
            "wait()",
            f"finished(content='{task}')",
        ][i % 10]
        lines.append(f"{prompt if i % 50 == 0 else ''}{task}\nThought: I need to {task[0].lower()}"
                     f"{task[1:]} The target is at ({x},{y}).\nAction: {action}")
    return lines


def _tokenizer(vocab_size: int):
    """Train a byte-level BPE (Qwen2 pre-tokenizer) and wrap it as ``Qwen2TokenizerFast``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=tok, unk_token=None, bos_token=None, eos_token="<|im_end|>",
        pad_token="<|endoftext|>", errors="replace", clean_up_tokenization_spaces=False,
        split_special_tokens=False, model_max_length=32768, chat_template=CHAT_TEMPLATE,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_bos_token": "<|vision_start|>",
                              "vision_eos_token": "<|vision_end|>"})


def build_tiny_model(out_dir: Path, seed: int = 0, max_pixels: int = MAX_PIXELS,
                     min_pixels: int = MIN_PIXELS, vocab_size: int = 2048) -> Path:
    """Build the tiny Qwen2.5-VL into ``out_dir`` (created) and return it."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(vocab_size)
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    common = dict(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2, size=size)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        video_processor=Qwen2VLVideoProcessor(**common), tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out_dir)

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    eos = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    text = dict(vocab_size=-(-len(tokenizer) // 64) * 64, hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=32768, max_window_layers=2, rms_norm_eps=1e-6,
                bos_token_id=ids["<|endoftext|>"], eos_token_id=eos[0],
                pad_token_id=ids["<|endoftext|>"],
                rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                 "mrope_section": [2, 3, 3]})  # sums to head_dim / 2 = 8
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
                  patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=2,
                  window_size=112, fullatt_block_indexes=[1], tokens_per_second=2)
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], dtype="float32",
        tie_word_embeddings=False)  # tied, greedy decoding only repeats the last token ("\n")
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=eos, pad_token_id=ids["<|endoftext|>"],
        max_new_tokens=64, do_sample=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "tiny_model.json").write_text(json.dumps(
        {"seed": seed, "max_pixels": max_pixels, "min_pixels": min_pixels,
         "vocab": len(tokenizer)}, indent=2) + "\n")
    return out_dir
