# Superset configuration, loaded through SUPERSET_CONFIG_PATH. Placeholders between at signs are filled in
# by scripts/sql-stack.sh; secrets come from the environment.
import os

# Signs session cookies and encrypts stored database passwords.
SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Superset's own metadata (users, databases, charts): SQLite under the state directory.
SQLALCHEMY_DATABASE_URI = "sqlite:///@STATE@/superset/superset.db"
# Query results are returned in the HTTP response, without a Celery worker.
RESULTS_BACKEND = None
# Rate limits kept in the web process; no Redis here.
RATELIMIT_STORAGE_URI = "memory://"
