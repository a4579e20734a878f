use super::*;

fn one(text: &str) -> Entry {
    let (entries, counts) = parse(text.as_bytes());
    assert_eq!(entries.len(), 1, "{entries:?} {counts:?}");
    entries.into_iter().next().unwrap()
}

#[test]
fn a_full_entry_with_every_attribute() {
    let (entries, counts) = parse(
        b"#EXTM3U url-tvg=\"http://g/epg.xml\"\n\
          #EXTINF:-1 tvg-id=\"bbc1.uk\" tvg-name=\"BBC One\" tvg-logo=\"http://l/1.png\" \
          tvg-chno=\"101\" group-title=\"UK, General\",BBC One FHD\n\
          #EXTVLCOPT:http-user-agent=Kodi/20.1 (X11)\n\
          #EXTVLCOPT:http-referrer=http://ref.example/\n\
          http://p.example:8080/live/u/p/1.ts\n",
    );
    assert_eq!(
        counts,
        Counts {
            lines: 5,
            entries: 1,
            skipped: 0,
            header: true
        }
    );
    assert_eq!(
        entries[0],
        Entry {
            url: "http://p.example:8080/live/u/p/1.ts".into(),
            name: "BBC One FHD".into(),
            tvg_id: Some("bbc1.uk".into()),
            tvg_name: Some("BBC One".into()),
            tvg_logo: Some("http://l/1.png".into()),
            tvg_chno: Some("101".into()),
            group: Some("UK, General".into()),
            user_agent: Some("Kodi/20.1 (X11)".into()),
            referrer: Some("http://ref.example/".into()),
        }
    );
}

#[test]
fn unquoted_and_single_quoted_attributes_and_odd_case() {
    let e = one(
        "#extinf:0 TVG-ID=zdf.de tvg-logo='http://l/z.png' Group-Title=News,ZDF HD\r\n\
                 HTTP://h/zdf.ts\r\n",
    );
    assert_eq!(e.tvg_id.as_deref(), Some("zdf.de"));
    assert_eq!(e.tvg_logo.as_deref(), Some("http://l/z.png"));
    assert_eq!(e.group.as_deref(), Some("News"));
    assert_eq!(e.name, "ZDF HD");
    assert_eq!(e.url, "HTTP://h/zdf.ts");
}

#[test]
fn a_minimal_playlist_without_header_or_extinf() {
    let (entries, counts) = parse(b"http://h/1.ts\nhttp://h/2.ts");
    assert!(!counts.header);
    assert_eq!(counts.entries, 2);
    assert_eq!(entries[0].name, "Untitled 1");
    assert_eq!(
        entries[1].url, "http://h/2.ts",
        "a last line without newline"
    );
    // Without a title the tvg-name names it.
    let e = one("#EXTINF:-1 tvg-name=\"Arte\"\nhttp://h/a.ts\n");
    assert_eq!(e.name, "Arte");
}

#[test]
fn extgrp_applies_until_the_next_and_group_title_wins() {
    let (entries, _) = parse(
        b"#EXTM3U\n#EXTGRP:Sports\n#EXTINF:-1,A\nhttp://h/a\n#EXTINF:-1,B\nhttp://h/b\n\
          #EXTINF:-1 group-title=\"Film\",C\nhttp://h/c\n#EXTGRP:News\n#EXTINF:-1,D\nhttp://h/d\n",
    );
    let groups: Vec<_> = entries.iter().map(|e| e.group.as_deref()).collect();
    assert_eq!(
        groups,
        [Some("Sports"), Some("Sports"), Some("Film"), Some("News")]
    );
}

#[test]
fn vlc_options_belong_to_the_next_url_only() {
    let (entries, _) = parse(
        b"#EXTVLCOPT:http-user-agent=Early\n#EXTINF:-1,A\nhttp://h/a\n#EXTINF:-1,B\nhttp://h/b\n",
    );
    assert_eq!(entries[0].user_agent.as_deref(), Some("Early"));
    assert_eq!(entries[1].user_agent, None);
}

#[test]
fn lines_that_make_no_entry_are_skipped_and_counted() {
    let (entries, counts) = parse(
        b"#EXTM3U\n\
          #EXTINF:-1,Orphan\n\
          #EXTINF:-1,Kept\n\
          http://h/kept.ts\n\
          rtmp://h/live\n\
          /local/file.ts\n\
          http://h/has space.ts\n\
          # a comment\n\
          \n\
          #EXTINF:-1,Trailing orphan\n",
    );
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "Kept");
    assert_eq!(counts.skipped, 5, "{counts:?}");
    assert_eq!(counts.lines, 10);
}

#[test]
fn bom_crlf_and_latin1() {
    let mut bytes =
        b"\xEF\xBB\xBF#EXTM3U\r\n#EXTINF:-1 group-title=\"T\xE9l\xE9\",M\xFCnchen TV\r\n".to_vec();
    bytes.extend_from_slice(b"http://h/m.ts\r\n");
    let (entries, counts) = parse(&bytes);
    assert!(counts.header, "the BOM hides no header");
    assert_eq!(entries[0].name, "München TV");
    assert_eq!(entries[0].group.as_deref(), Some("Télé"));
    assert_eq!(entries[0].url, "http://h/m.ts");
    // UTF-8 stays UTF-8.
    assert_eq!(one("#EXTINF:-1,Télé 1\nhttp://h/t\n").name, "Télé 1");
}

#[test]
fn overlong_lines_are_skipped_without_being_kept() {
    let mut bytes = b"#EXTINF:-1,Big\n".to_vec();
    bytes.extend_from_slice(b"http://h/");
    bytes.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
    bytes.extend_from_slice(b"\n#EXTINF:-1,Small\nhttp://h/s\n");
    let mut parser = Parser::new();
    let mut entries = Vec::new();
    for chunk in bytes.chunks(4096) {
        parser.push(chunk, &mut |e| entries.push(e));
        assert!(parser.line.capacity() <= 2 * MAX_LINE);
    }
    let counts = parser.finish(&mut |e| entries.push(e));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "Small");
    // The overlong URL line, and the #EXTINF it orphaned when the next #EXTINF came.
    assert_eq!(counts.skipped, 2, "{counts:?}");
}

#[test]
fn control_characters_and_unclosed_quotes() {
    let e = one("#EXTINF:-1 tvg-id=\"a\x07b\" tvg-name=\"Unclosed,Title\nhttp://h/x\n");
    assert_eq!(e.tvg_id.as_deref(), Some("ab"));
    assert_eq!(e.tvg_name.as_deref(), Some("Unclosed,Title"));
    assert_eq!(e.name, "Unclosed,Title");
}

#[test]
fn any_chunking_gives_the_same_result() {
    let text =
        b"\xEF\xBB\xBF#EXTM3U\r\n#EXTINF:-1 tvg-id=x,One\r\n#EXTVLCOPT:http-user-agent=UA\r\n\
                 http://h/1\r\n#EXTGRP:G\r\nhttp://h/2\n#EXTINF:-1,Orphan\n";
    let whole = parse(text);
    for size in 1..text.len() {
        let mut parser = Parser::new();
        let mut entries = Vec::new();
        for chunk in text.chunks(size) {
            parser.push(chunk, &mut |e| entries.push(e));
        }
        let counts = parser.finish(&mut |e| entries.push(e));
        assert_eq!((entries, counts), whole, "chunks of {size}");
    }
}
