from secdns.cli import main

main()
