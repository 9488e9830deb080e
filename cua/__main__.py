from cua.cli import app

app(prog_name="cua")
