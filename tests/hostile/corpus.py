"""The whole hostile corpus: input, output-place and option cases."""

from .cases import CASES as INPUT_CASES
from .cases import Bases, Case, Inputs, argv
from .option_cases import OPTION_CASES

CASES = INPUT_CASES + OPTION_CASES

__all__ = ["CASES", "Bases", "Case", "Inputs", "argv"]
