from gitdag.cli import main

main()
