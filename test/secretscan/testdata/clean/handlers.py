"""Login handlers (read by tools/read_file)."""
import getpass
import os

from .auth import get_token, hash_password, verify_password

api_key = os.environ["OPENAI_API_KEY"]
secret_key = os.environ.get("SECRET_KEY")
password = getpass.getpass()
token = get_token(user)
db_password = os.getenv("DB_PASSWORD", default=None)


def login(request):
    password = request.form["password"]
    if not verify_password(request.user, password):
        return {"error": "invalid password"}, 401
    token = issue_token(request.user, scopes=["repo:read"])
    return {"token_type": "Bearer", "expires_in": 3600}


def rotate(secret_name: str) -> None:
    """Rotate the secret named secret_name; the token is re-issued."""
    secret = vault.read(secret_name)
    vault.write(secret_name, hash_password(secret))
