"""Teacher generation (``generate``) and sample validation (``validate``)."""
