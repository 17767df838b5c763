from stacksecrets._cli import main

main()
