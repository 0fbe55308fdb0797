"""Human review in Argilla: push samples, pull decisions and corrections, measure agreement, serve locally.

The stage (:mod:`cotforge.review.stage`): :func:`~cotforge.review.stage.push_to_argilla`,
:func:`~cotforge.review.stage.pull_from_argilla`, :func:`~cotforge.review.stage.auto_review_in_run` (no server
configured) and the pipeline step :func:`~cotforge.review.stage.run_review`. Kept import-light on purpose.
"""
