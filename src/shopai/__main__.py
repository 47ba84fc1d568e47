"""`python -m shopai ...`: the `shopai` command, for processes started by `shopai serve`
(the interpreter running it is known; where the console script lives is not)."""

from .cli import main

main()
