//! Terminal mode: a pty whose master goes to the console socket (SCM_RIGHTS).
