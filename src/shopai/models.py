"""Import every model so metadata is complete (Alembic autogenerate, create_all in tools)."""

from .assistant.models import ChatMessage, Conversation
from .auth.models import User
from .catalog.models import Category, Product
from .images.models import CategoryImagePrompt, ImageRequest, ProductImage
from .jobs.models import Job
from .search.models import ProductEmbedding
from .suggest.models import (
    BlockedTerm,
    ProductQuery,
    QueryExpansion,
    SearchQuery,
    SearchVisitor,
)
from .usage.models import UsageRecord

__all__ = [
    "BlockedTerm",
    "Category",
    "CategoryImagePrompt",
    "ChatMessage",
    "Conversation",
    "ImageRequest",
    "Job",
    "Product",
    "ProductEmbedding",
    "ProductImage",
    "ProductQuery",
    "QueryExpansion",
    "SearchQuery",
    "SearchVisitor",
    "UsageRecord",
    "User",
]
