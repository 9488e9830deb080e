from pathlib import Path

import pytest
from pydantic import ValidationError

from cua.envspec import ENVS_DIR, EnvSpec, load_env


def test_every_shipped_env_loads_and_routes_its_content():
    specs = {p.stem: load_env(p) for p in ENVS_DIR.glob("*.yaml")}
    assert {"calc", "impress", "writer", "browser", "editor", "terminal"} <= set(specs)
    assert sum(len(s.apps) > 1 for s in specs.values()) >= 3
    assert specs["calc-writer"].app_for("docx") == "writer"
    assert specs["calc"].screen.width == 1920 and specs["calc"].dialogs.keep_format == "show"


def test_bad_specs_are_refused_at_load(tmp_path: Path):
    with pytest.raises(ValidationError, match="cannot open"):
        EnvSpec.model_validate({"name": "x", "apps": [{"app": "calc", "content": ["pptx"]}]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        EnvSpec.model_validate({"name": "x", "apps": [{"app": "calc"}], "colour": "red"})
    with pytest.raises(ValueError, match="no app for pptx"):
        load_env(ENVS_DIR / "calc.yaml").app_for("pptx")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="cannot read env spec"):
        load_env(broken)
    with pytest.raises(ValueError, match="unknown env 'calcc': neither a spec YAML nor one of "
                       "browser, calc, "):
        load_env("calcc")
