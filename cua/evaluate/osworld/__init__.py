"""OSWorld's own scoring for OSWorld tasks: desktop-env 1.0.2 in a separate pinned venv
(`scorer_env`), driven through a long-lived worker process (`scorer`), reaching a cua desktop
through a local HTTP bridge that adds its token (`bridge`)."""
