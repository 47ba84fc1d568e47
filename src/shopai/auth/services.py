"""Accounts: creation and credential checks, independent of any request."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from ..extensions import db
from ..text import as_id
from .models import User

MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    pass


def normalize_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(str(exc)) from None


def create_admin(email: str, password: str) -> User:
    """Create an admin, or promote and re-password an existing account with that email."""
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    user = db.session.scalar(select(User).where(User.email == email)) or User(email=email)
    user.set_password(password)
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
    user_key = as_id(user_id)
    return db.session.get(User, user_key) if user_key is not None else None


def admin_emails() -> list[str]:
    return list(db.session.scalars(select(User.email).where(User.is_admin).order_by(User.email)))
