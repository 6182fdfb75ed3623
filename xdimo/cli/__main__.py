from xdimo.cli import main

main()
