from secdns._entry import main

main()
