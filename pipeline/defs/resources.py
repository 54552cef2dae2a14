"""The warehouse resource, the executor every job uses, and settings from the environment.

Nothing here is a secret that must exist: every value has a working default.  Anything that
could carry private information is read through `dg.EnvVar` at run time, never from code or
run config committed to the repository:
* TRIALS_WAREHOUSE -- the warehouse file (set in `.env`);
* TRIALS_USER_AGENT -- the crawler's User-Agent, which may name a contact e-mail.
There is no proxy setting: the crawler ignores HTTP(S)_PROXY and .netrc on purpose
(`trust_env=False` in pipeline/scrape/http.py), and there is no remote (MotherDuck) warehouse.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.db.connection import WAREHOUSE_ENV
from pipeline.scrape import DEFAULT_USER_AGENT

USER_AGENT_ENV = "TRIALS_USER_AGENT"


def crawl_user_agent(configured: str | None = None) -> str:
    """The run config's User-Agent, else $TRIALS_USER_AGENT, else the project's default."""
    return configured or dg.EnvVar(USER_AGENT_ENV).get_value() or DEFAULT_USER_AGENT


@dg.definitions
def resources() -> dg.Definitions:
    # Resolved when a run starts, not at import: `.env` in the project root (loaded by
    # `dg dev` / `dagster dev`) sets the default warehouse/trials.duckdb; the shell or the
    # deployment may set TRIALS_WAREHOUSE instead.  `trials run` binds its own path.
    return dg.Definitions(
        resources={"warehouse": DuckDBResource(database=dg.EnvVar(WAREHOUSE_ENV))},
        # DuckDB allows one writing process per file, so steps run one at a time in-process.
        executor=dg.in_process_executor,
    )
