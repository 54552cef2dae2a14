"""Fill trial_history, first_seen_at / last_changed_at and presence for trials loaded before
0003_history.sql existed, from the pages they already have (nothing is re-parsed).  On a new,
empty warehouse this does nothing."""


def upgrade(conn):
    from pipeline.db.history import rebuild

    rebuild(conn)
