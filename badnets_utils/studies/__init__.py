"""Many runs: the pool that runs a list of attacks (``pool.run_many``, local processes or Dask), the poisoning-rate
sweeps of notebook 04 (``sweep``), the attack variants of 06 (``variants``), the paper's experiments of 08
(``paper``) and the spectral-signatures study of 07 (``spectral_study``). Numbers in, numbers out: their figures
are in ``course``."""
