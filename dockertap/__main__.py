from dockertap.app import main

main()
