"""Private plumbing: safe files (``files``: the one path helper, atomic writes, the shipped-file guard), checkpoint
files before a model is built (``checkpoint_files``: the manifest, a bounded look inside), the machine
(``machine``: the device, CPU threads; ``allocator``: glibc's thresholds) and progress bars (``progress``).
Nothing here knows about backdoors."""
