"""What the notebooks use beyond the core: the setup cell (``notebook``), the exercises and their self-checks
(``exercises``), the figures (``plots`` and one module per notebook that needs its own), and the trigger painter
(``canvas``: its logic in plain Python; ``painter``: the ipywidgets view)."""
