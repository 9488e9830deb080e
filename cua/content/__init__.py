"""Content, the first stage: checks that documents open, generated documents, summaries and text
readers of office files."""
