"""The commands of ``python -m badnets_utils`` (``cli``) and what a lecturer or maintainer runs: the shipped
releases (``releases``), classroom editions and nbgrader (``classroom``, ``editions``, ``grading``), the repository
the badges point at (``github``, ``set-repo``), the sweep's command line (``sweep_command``), a checkpoint exported
to ONNX (``onnx_export``), the sandbox kernel autograding runs in (``sandbox_kernel``) and the generated blocks of
the docs (``pages``, ``blocks``, ``benchmark_tables``)."""
