from shopai.text import slugify, words


def test_slugify_keeps_letters_of_any_script():
    assert slugify("My Product") == "my-product"
    assert slugify("My_Product") == "my-product"
    assert slugify("Наушники Pro") == "наушники-pro"
    assert slugify("Café  Grinder!!") == "café-grinder"


def test_slugify_falls_back_when_nothing_is_left():
    assert slugify("!!!", fallback="product") == "product"


def test_words_are_bounded_and_ignore_operators():
    assert words('wireless "NOT" head*') == ["wireless", "NOT", "head"]
    assert len(words("a " * 50)) == 12
