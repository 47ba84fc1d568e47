import pytest

from shopai.ai.download import download_image
from shopai.ai.errors import ImageDownloadError


def get(url: str, **options):
    return download_image(url, max_bytes=options.pop("max_bytes", 1000), timeout=2, **options)


def test_an_image_is_downloaded(fake):
    url = fake.serve_file("/files/ok.png", b"\x89PNG fake", content_type="image/png")
    assert get(url, allow_private=True) == b"\x89PNG fake"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost/x.png",
        "http://10.0.0.5/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x.png",
        "http://0.0.0.0/x.png",
    ],
)
def test_private_and_loopback_addresses_are_refused(url):
    with pytest.raises(ImageDownloadError, match="non-public"):
        get(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "http:///x"])
def test_only_http_urls(url):
    with pytest.raises(ImageDownloadError, match="http"):
        get(url)


def test_oversized_bodies_are_refused(fake):
    url = fake.serve_file("/files/big.png", b"x" * 5000, content_type="image/png")
    with pytest.raises(ImageDownloadError, match="larger than"):
        get(url, allow_private=True)


def test_non_images_are_refused(fake):
    url = fake.serve_file("/files/page.html", b"<html></html>", content_type="text/html")
    with pytest.raises(ImageDownloadError, match="text/html"):
        get(url, allow_private=True)


def test_error_statuses_are_refused(fake):
    url = fake.serve_file("/files/gone.png", b"", status=404)
    with pytest.raises(ImageDownloadError, match="404"):
        get(url, allow_private=True)


def test_redirects_to_another_host_are_refused(fake):
    url = fake.redirect("/files/moved.png", "http://example.com/x.png")
    with pytest.raises(ImageDownloadError, match="another host"):
        get(url, allow_private=True)


def test_same_origin_redirects_are_followed(fake):
    target = fake.serve_file("/files/real.png", b"PNGDATA", content_type="image/png")
    url = fake.redirect("/files/alias.png", target)
    assert get(url, allow_private=True) == b"PNGDATA"
