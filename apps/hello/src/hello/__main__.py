"""`python -m hello`: run the service until SIGTERM or SIGINT."""

from hello.main import main

raise SystemExit(main())
