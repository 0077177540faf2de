from falcopy.cli import main

main()
