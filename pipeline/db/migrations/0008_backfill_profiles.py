"""Fill the eligibility and cell-therapy profile tables (0005_eligibility.sql) for trials
loaded before they existed, from the golden rows already stored (nothing is re-parsed), so an
upgraded warehouse answers `trials match` at once.  Loads keep them current afterwards.  On a
new, empty warehouse this does nothing."""


def upgrade(conn):
    from pipeline.db.profiles import refresh_profiles

    refresh_profiles(conn, transaction=False)
