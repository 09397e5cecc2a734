from quantsam.cli import main

main()
