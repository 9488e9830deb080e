"""Samples: step-prefix expansion of trajectories and the SFT dataset."""
