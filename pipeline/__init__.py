"""osteoprint: CT to printable spinal implants (vertebra models, scaffolds, guides).

The Python API mirrors the command line, one function per pipeline stage; see
README.md for the stage-by-stage walk-through.
"""

__version__ = "0.1.0"
