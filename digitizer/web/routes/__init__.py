"""Page routes under ``/web``, one module per page family."""
