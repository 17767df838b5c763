from stacksecrets.cli import main

main()
