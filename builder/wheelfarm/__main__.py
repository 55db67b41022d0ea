from wheelfarm.cli import main

main()
