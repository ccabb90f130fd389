"""What-if studies over the experiments layer: capacity plans (``plan``), paired comparisons
(``compare``) and config differences (``diff``). Above experiments and figures, below the command line."""
