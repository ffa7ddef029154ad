"""The config tokenizer and statement tree: nginx's word rules, file:line, includes."""

from __future__ import annotations

import pytest

from webserv.config import ConfigError
from webserv.config.lexer import parse_file, tokenize


def texts(source: str) -> list[str]:
    return [t.text for t in tokenize(source, "t.conf")]


def shape(statements) -> list:
    """(name, args, line[, children]) for a statement tree, for whole-tree comparisons."""
    out = []
    for s in statements:
        item = (s.name, s.arg_texts(), s.file.rsplit("/", 1)[-1], s.line)
        if s.block is not None:
            item += (shape(s.block),)
        out.append(item)
    return out


def parse_text(folder, source: str):
    """Write SOURCE as FOLDER/w.conf and parse it."""
    path = folder / "w.conf"
    path.write_text(source)
    return parse_file(str(path))


# --- tokens -------------------------------------------------------------------------------


def test_tokens_carry_file_and_line():
    source = "worker_processes 1;\n\nhttp {\n  server {\n    listen\n      8080;\n  }\n}\n"
    tokens = tokenize(source, "/etc/w.conf")
    assert [(t.text, t.file, t.line) for t in tokens] == [
        ("worker_processes", "/etc/w.conf", 1),
        ("1", "/etc/w.conf", 1),
        (";", "/etc/w.conf", 1),
        ("http", "/etc/w.conf", 3),
        ("{", "/etc/w.conf", 3),
        ("server", "/etc/w.conf", 4),
        ("{", "/etc/w.conf", 4),
        ("listen", "/etc/w.conf", 5),
        ("8080", "/etc/w.conf", 6),
        (";", "/etc/w.conf", 6),
        ("}", "/etc/w.conf", 7),
        ("}", "/etc/w.conf", 8),
    ]


def test_crlf_line_endings_count_lines_once():
    tokens = tokenize("a 1;\r\nb 2;\r\n\r\nc 3;\r\n", "t.conf")
    assert [(t.text, t.line) for t in tokens if t.text not in ";"] == [
        ("a", 1),
        ("1", 1),
        ("b", 2),
        ("2", 2),
        ("c", 4),
        ("3", 4),
    ]


def test_punctuation_needs_no_blanks():
    assert texts("http{server{listen 80;}}") == [
        "http",
        "{",
        "server",
        "{",
        "listen",
        "80",
        ";",
        "}",
        "}",
    ]


def test_double_and_single_quotes_group_words():
    tokens = tokenize("""log_format main "a b  c" 'd "e" f';""", "t.conf")
    assert [(t.text, t.quoted) for t in tokens] == [
        ("log_format", False),
        ("main", False),
        ("a b  c", True),
        ('d "e" f', True),
        (";", False),
    ]


def test_quoted_punctuation_is_an_argument(tmp_path):
    (stmt,) = parse_text(tmp_path, "return 200 ';{}';\n")
    assert (stmt.name, stmt.arg_texts(), stmt.block) == ("return", ["200", ";{}"], None)
    tokens = tokenize('x ";" "{";', "t.conf")
    assert [(t.text, t.quoted) for t in tokens] == [
        ("x", False),
        (";", True),
        ("{", True),
        (";", False),
    ]


def test_empty_quotes_are_an_empty_argument(tmp_path):
    (stmt,) = parse_text(tmp_path, 'server_name "" example.com;\n')
    assert stmt.arg_texts() == ["", "example.com"]


@pytest.mark.parametrize(
    ("source", "word"),
    [
        (r'"a\"b"', 'a"b'),
        (r"'a\'b'", "a'b"),
        (r'"a\\b"', "a\\b"),
        (r'"a\nb\tc\rd"', "a\nb\tc\rd"),
        (r'"\d+\.html"', r"\d+\.html"),  # not an escape: the backslash stays (regexes)
        (r"'single \"keeps\" too'", 'single "keeps" too'),
    ],
)
def test_escapes_in_quotes(source, word):
    assert texts(source) == [word]


@pytest.mark.parametrize(
    ("source", "word"),
    [
        (r"a\"b", 'a"b'),  # nginx applies the same escapes to unquoted words
        (r"a\\b", "a\\b"),
        (r"a\nb", "a\nb"),
        (r"^/img/.+\.png$", r"^/img/.+\.png$"),
        (r"a\ b", r"a\ b"),  # an escaped blank joins the word and keeps its backslash
        (r"a\;b", r"a\;b"),
    ],
)
def test_escapes_in_unquoted_words(source, word):
    assert texts(source) == [word]


def test_multiline_quote_keeps_its_start_line_and_counts_its_newlines():
    tokens = tokenize('a "one\ntwo\nthree" b;\nc;', "t.conf")
    assert [(t.text, t.line) for t in tokens] == [
        ("a", 1),
        ("one\ntwo\nthree", 1),
        ("b", 3),
        (";", 3),
        ("c", 4),
        (";", 4),
    ]


def test_comments_run_to_the_end_of_the_line():
    source = "# heading\nroot /srv; # trailing ; { }\n  # indented\nindex i.html;# no blank\n# last"
    assert [(t.text, t.line) for t in tokenize(source, "t.conf")] == [
        ("root", 2),
        ("/srv", 2),
        (";", 2),
        ("index", 4),
        ("i.html", 4),
        (";", 4),
    ]


def test_hash_inside_a_word_or_quotes_is_not_a_comment():
    # nginx starts a comment only where a word could start: "/page#top" is one word
    assert texts("return 302 /page#top;") == ["return", "302", "/page#top", ";"]
    assert texts("""return 200 "# not a comment";""") == ["return", "200", "# not a comment", ";"]


def test_variable_braces_stay_in_the_word():
    assert texts("return 200 ${host}x/$uri;") == ["return", "200", "${host}x/$uri", ";"]
    assert texts("location /a{") == ["location", "/a", "{"]


def test_only_blanks_semicolon_and_brace_end_a_word():
    # as in nginx, "}" and quotes inside an unquoted word belong to it
    assert texts("""a}b c"d'e;""") == ["a}b", """c"d'e""", ";"]


def test_quoted_word_must_be_followed_by_a_separator():
    with pytest.raises(ConfigError) as info:
        tokenize('root "/srv"x;', "/c/w.conf")
    assert (info.value.file, info.value.line) == ("/c/w.conf", 1)
    assert info.value.message == 'unexpected "x" after a closing quote'


def test_unterminated_quote_names_the_line_it_opened_on():
    with pytest.raises(ConfigError) as info:
        tokenize("root /srv;\nindex 'i.html;\n\nroot /x;\n", "/c/w.conf")
    assert (info.value.file, info.value.line) == ("/c/w.conf", 2)
    assert info.value.message == "unexpected end of file, expecting closing quote"


def test_empty_and_comment_only_sources_have_no_tokens():
    assert tokenize("", "t.conf") == []
    assert tokenize("\n  # nothing\n\t\n", "t.conf") == []


# --- statements ---------------------------------------------------------------------------


def test_statement_tree_with_lines_and_block_ends(tmp_path):
    source = (
        "events {\n"
        "    worker_connections 64;\n"
        "}\n"
        "http {\n"
        "    server {\n"
        "        listen 8080 default_server;\n"
        "        location = /x { return 204; }\n"
        "    }\n"
        "}\n"
    )
    statements = parse_text(tmp_path, source)
    assert shape(statements) == [
        ("events", [], "w.conf", 1, [("worker_connections", ["64"], "w.conf", 2)]),
        (
            "http",
            [],
            "w.conf",
            4,
            [
                (
                    "server",
                    [],
                    "w.conf",
                    5,
                    [
                        ("listen", ["8080", "default_server"], "w.conf", 6),
                        ("location", ["=", "/x"], "w.conf", 7, [("return", ["204"], "w.conf", 7)]),
                    ],
                ),
            ],
        ),
    ]
    assert [statements[0].end_line, statements[1].end_line] == [3, 9]
    assert statements[1].block[0].end_line == 8


def test_a_quoted_directive_name_is_a_directive(tmp_path):
    (stmt,) = parse_text(tmp_path, '"root" /srv;\n')
    assert (stmt.name, stmt.arg_texts()) == ("root", ["/srv"])


def test_empty_block_and_empty_file(tmp_path):
    assert shape(parse_text(tmp_path, "events {}\n")) == [("events", [], "w.conf", 1, [])]
    assert parse_text(tmp_path, "# only a comment\n") == []


# --- include -------------------------------------------------------------------------------


def test_include_glob_is_relative_to_the_config_folder_and_sorted(conf):
    conf.write("sites/b.conf", "server_name b;\n")
    conf.write("sites/a.conf", "# first\nserver_name a;\n")
    conf.write("sites/skip.txt", "not included;\n")
    main = conf.write(
        "w.conf", "http {\n    root /r;\n    include sites/*.conf;\n    index i;\n}\n"
    )
    assert shape(parse_file(str(main))) == [
        (
            "http",
            [],
            "w.conf",
            1,
            [
                ("root", ["/r"], "w.conf", 2),
                ("server_name", ["a"], "a.conf", 2),
                ("server_name", ["b"], "b.conf", 1),
                ("index", ["i"], "w.conf", 4),
            ],
        ),
    ]
    (http,) = parse_file(str(main))
    assert http.block[1].file == str(conf.path / "sites" / "a.conf")


def test_include_does_not_depend_on_the_working_directory(conf, tmp_path, monkeypatch):
    conf.write("etc/part.conf", "index from-part;\n")
    main = conf.write("etc/w.conf", "include part.conf;\n")
    monkeypatch.chdir(tmp_path)  # the folder above etc/, where "part.conf" does not exist
    assert shape(parse_file(str(main))) == [("index", ["from-part"], "part.conf", 1)]


def test_nested_include_is_relative_to_the_main_config_folder(conf):
    # as nginx: every relative include is resolved against the main config's folder
    conf.write("sub/one.conf", "index one;\ninclude two.conf;\n")
    conf.write("two.conf", "index two-top;\n")
    conf.write("sub/two.conf", "index two-sub;\n")
    main = conf.write("w.conf", "include sub/one.conf;\n")
    assert shape(parse_file(str(main))) == [
        ("index", ["one"], "one.conf", 1),
        ("index", ["two-top"], "two.conf", 1),
    ]


def test_include_absolute_path_and_quoted_pattern(conf, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "x.conf").write_text("index x;\n")
    main = conf.write("w.conf", f'include "{other}/*.conf";\n')
    assert shape(parse_file(str(main))) == [("index", ["x"], "x.conf", 1)]


def test_include_glob_matching_nothing_is_not_an_error(conf):
    main = conf.write("w.conf", "include none/*.conf;\nindex i;\n")
    assert shape(parse_file(str(main))) == [("index", ["i"], "w.conf", 2)]


def test_include_inside_a_block_splices_there(conf):
    conf.write("loc.conf", "location /a {\n    return 204;\n}\n")
    main = conf.write("w.conf", "server {\n    include loc.conf;\n}\n")
    assert shape(parse_file(str(main))) == [
        (
            "server",
            [],
            "w.conf",
            1,
            [
                ("location", ["/a"], "loc.conf", 1, [("return", ["204"], "loc.conf", 2)]),
            ],
        ),
    ]


def test_include_loop_is_an_error_at_the_include_line(conf):
    conf.write("loop.conf", "index i;\ninclude loop.conf;\n")
    main = conf.write("w.conf", "include loop.conf;\n")
    with pytest.raises(ConfigError) as info:
        parse_file(str(main))
    assert (info.value.file, info.value.line) == (str(conf.path / "loop.conf"), 2)
    assert info.value.message == "include nested too deeply (a loop?)"
