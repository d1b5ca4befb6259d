"""`python -m gitdag` and the `gitdag` console script.

`status`, `ready` and `show` in their plain forms run without building the click group (a fast
start: gitdag/readonly.py); every other command line goes to click (gitdag/cli/).
"""

import sys


def main() -> None:
    """Entry point of the `gitdag` console script and of `python -m gitdag`."""
    from gitdag.readonly import fast_main

    code = fast_main(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from gitdag.cli import main as click_main

    click_main()


if __name__ == "__main__":
    main()
