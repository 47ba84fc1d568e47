"""Accounts: creation and credential checks, independent of any request."""

from __future__ import annotations

import string

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from ..extensions import db
from ..text import as_id
from .models import User

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
MIN_DISTINCT_CHARACTERS = 5


class AccountError(ValueError):
    pass


def normalize_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(str(exc)) from None


def check_password_policy(password: str, email: str = "") -> None:
    """Refuse passwords that meet the length but guess in a few tries ("          ",
    "aaaaaaaaaa", "1234567890", the email itself). Length matters most; these rules
    only catch the degenerate cases, without composition rules that push people
    towards "Password1!"."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at most {MAX_PASSWORD_LENGTH} characters.")
    if not password.strip():
        raise AccountError("The password cannot be only spaces.")
    folded = password.casefold()
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        raise AccountError(
            f"The password needs at least {MIN_DISTINCT_CHARACTERS} different characters."
        )
    if folded.strip(_AROUND_A_CORE) in _COMMON_CORES or folded in _COMMON_CORES:
        raise AccountError("That password is among the most common ones; choose another.")
    if _is_run(folded):
        raise AccountError("The password cannot be a run of keys or characters in order.")
    local_part = email.partition("@")[0].casefold()
    if local_part and (folded == email.casefold() or folded == local_part):
        raise AccountError("The password cannot be the email address.")


# The words at the heart of the most leaked passwords ("password123", "admin12345",
# "iloveyou!!"): a password that is one of them with digits or symbols around it falls
# to the first guesses of any attack.
_COMMON_CORES = frozenset(
    [
        "password",
        "passw0rd",
        "p@ssword",
        "qwerty",
        "qwertz",
        "azerty",
        "admin",
        "administrator",
        "root",
        "welcome",
        "letmein",
        "iloveyou",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "soccer",
        "sunshine",
        "princess",
        "shadow",
        "master",
        "superman",
        "batman",
        "trustno1",
        "login",
        "changeme",
        "secret",
        "test",
        "guest",
        "shop",
        "shopai",
        "store",
        "hello",
        "freedom",
        "whatever",
        "starwars",
        "charlie",
        "michael",
        "jordan",
        "hunter",
        "ninja",
        "access",
        "flower",
        "lovely",
        "1q2w3e4r5t",
        "1q2w3e4r",
        "1qaz2wsx",
        "zaq12wsx",
        "asdfgh",
        "asdfghjkl",
        "zxcvbnm",
        "abc123",
        "default",
    ]
)
_AROUND_A_CORE = string.digits + string.punctuation + " "

# Runs people type as passwords: along the alphabet, the digits, a keyboard row.
_RUNS = ("abcdefghijklmnopqrstuvwxyz", "01234567890123456789", "qwertyuiopasdfghjklzxcvbnm")


def _is_run(text: str) -> bool:
    """Like "1234567890", "abcdefghij", "qwertyuiop", or any of them backwards."""
    return any(text in run or text in run[::-1] for run in _RUNS)


def create_admin(email: str, password: str) -> User:
    """Create an admin, or promote and re-password an existing account with that email
    (which signs out every session of that account)."""
    email = normalize_email(email)
    check_password_policy(password, email)
    user = db.session.scalar(select(User).where(User.email == email)) or User(email=email)
    user.set_password(password)
    user.end_sessions()  # a new password signs out every device
    user.is_admin = True
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        # Hash anyway so response time does not reveal which emails exist.
        User(email=email).set_password(password)
        return None
    return user if user.check_password(password) else None


def load_user(user_id: str) -> User | None:
    """The user named by a session or remember-me cookie, while its token is current."""
    key, _, token = user_id.partition(":")
    user_key = as_id(key)
    user = db.session.get(User, user_key) if user_key is not None and token else None
    return user if user is not None and user.has_session_token(token) else None


def sign_out_everywhere(user: User) -> None:
    """End every session and remember-me cookie of `user` (sign-out ends them all: a
    cookie copied from one device must not outlive it on another)."""
    user.end_sessions()
    db.session.commit()


def admin_emails() -> list[str]:
    return list(db.session.scalars(select(User.email).where(User.is_admin).order_by(User.email)))
