"""``python -m deeppot ...``, as ``deeppot ...``; lets ``torchrun -m deeppot train input.json`` start data-parallel
training."""

import sys

from deeppot.cli import main

sys.exit(main())
