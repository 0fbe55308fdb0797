"""Code that runs inside the argilla-server venv (it imports ``argilla_server``); cotforge never imports it.

``launch.py`` is started as a script by :mod:`cotforge.review.server`; ``memory_engine.py`` is its in-memory
search engine.
"""
