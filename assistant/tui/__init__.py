"""The Textual chat: ``assistant`` with no arguments opens it.

Nothing here imports LlamaIndex or Chroma; the answering service is handed in
by a factory (see :func:`assistant.tui.app.make_app`) and reached only through
the plain records of :mod:`assistant.models`.
"""
