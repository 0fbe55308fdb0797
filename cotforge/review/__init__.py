"""Human review in Argilla: push samples, pull decisions and corrections, measure agreement, serve locally.

Pipeline entry points: :func:`cotforge.review.push.push_to_argilla`, :func:`cotforge.review.pull.pull_from_argilla`,
:func:`cotforge.review.auto.auto_review_in_run` (no server configured). Kept import-light on purpose.
"""
