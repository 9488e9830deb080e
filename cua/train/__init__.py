"""Training and serving: TRL fine-tuning, `transformers serve`, the tiny offline model."""
