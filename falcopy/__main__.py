from falcopy.cli import run

run()
