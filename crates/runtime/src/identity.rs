//! The container process's identity and limits: user, groups, rlimits, umask, oom_score_adj, no_new_privs.
