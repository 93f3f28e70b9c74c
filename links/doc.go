// Package links expands the short links amoCRM's Salesbot puts in messages
// ("amo.sh/4823", "https://amo.sh/K/YNTCBS/YJMC10") into the addresses they
// lead to, so that WhatsApp shows a preview and clients trust the link. It
// implements the global setting "Expand Salesbot links" (spec, settings for
// all channels, item 3).
//
// [Find] and [ParsePreview] are pure. Only an [Expander]'s methods touch the
// network, and only when the host calls them; nothing runs in the
// background except a fetch a caller started (see Options.PerMessageTimeout).
//
// # The setting and amoCRM click tracking
//
// The setting is OFF by default, and hosts must keep it so: amoCRM issues a
// separate short link per contact and records a visit on the contact when
// the link is opened (a note, plus a tracking pixel). When this package
// fetches a tracked link to learn where it leads, amoCRM may count that
// fetch as the client's click and fire click-triggered automations (for
// example "create a task when the client clicks"); the client's real click
// on the expanded link is then no longer tracked. Turn the setting on only
// for accounts that do not use link clicks in automations. Whether HEAD
// requests avoid the count is unknown for amo.sh, so the package uses GET.
// The switch itself belongs to the host: call [Expander.ExpandText] for a
// Salesbot message only when the setting is on.
//
// # Rules
//
// Finding ([Find]): a link is a configured shortener host (amo.sh by
// default, case-insensitive), optionally with "http://"/"https://" and
// "www.", an optional port, and a path of any number of segments, plus an
// optional query and fragment. It must not be glued to a preceding letter or
// digit of any script (so "ссылкаamo.sh/1" and "notamo.sh/1" are not links)
// nor follow '@', '/', '.', '=' and the like (e-mail addresses, links inside
// other URLs). Surrounding punctuation — «», (), quotes, a final '.', ',',
// '!', '?', ':' or ';' — is not part of the link. Replacement works by byte
// offsets: every byte outside the links is kept as is.
//
// Expanding ([Expander.ExpandText]): each distinct link of a message is
// expanded once, however often the message repeats it, and the distinct
// links concurrently. Redirects are followed by hand: a 3xx Location
// (relative ones resolved against the current hop), a Refresh header, and
// <meta http-equiv="refresh"> in the head of a 2xx HTML page (read through
// x/net/html, charset-aware: windows-1251 and the rest, from the
// Content-Type header, a BOM or a <meta charset>). Only http and https are
// followed. A 2xx response without a refresh, a non-2xx response after at
// least one redirect, or a non-HTML response ends the chain: that address is
// the long one. Non-HTML bodies are not read; HTML bodies are read up to
// <body>, </head> or Options.MaxBodyBytes, whichever comes first. What is
// left of a body, if a few KiB at most, is read and discarded so that the
// connection is reused for the next request instead of paying a new TCP
// and TLS handshake.
//
// Limits: Options.MaxHops redirects (loop detection on the visited set, the
// fragment ignored), Options.PerLinkTimeout for one link with all its hops,
// Options.PerMessageTimeout for one ExpandText call (and the caller's ctx),
// Options.MaxBodyBytes per response, Options.MaxLinksPerMessage distinct
// links per message (the rest are left as written and counted in
// Result.Skipped), Options.MaxConcurrentFetches links followed at once by
// one Expander over all calls, 64 KiB of response headers, 8 KiB per
// redirect target. The memory an ExpandText call uses is its result text
// plus a bounded amount per distinct link, however many links the text
// holds.
//
// A failed expansion never loses or blocks the message: the short link stays
// in Result.Text and Result.Links says for each distinct link what
// happened (Long, Hops, the Trail of requests, or Err). A link that answers
// with a page of its own rather than a redirect is reported with
// [ErrNoRedirect] and kept.
//
// Caching: each normalised short link ([Span].URL) is fetched at most once
// at a time however many messages and goroutines carry it (single flight),
// and its outcome is kept in a bounded LRU cache: successes for
// Options.CacheTTL, failures for Options.FailureTTL. A caller whose budget
// runs out stops waiting, but the fetch it joined or started runs on (for at
// most PerLinkTimeout) and its outcome is cached for the next message.
// Expiry uses Options.Now.
//
// Logging: with Options.Logger set, each link followed is logged with its
// host, hops, last status, duration and outcome; never a path, a query or
// an error text (see Options.Logger).
//
// Safety: the default HTTP client refuses, at dial time (after DNS, on every
// hop and every connection attempt, so neither a redirect nor DNS rebinding
// gets around it), loopback, private (RFC 1918, ULA), link-local,
// CGNAT, unspecified, multicast, reserved, documentation, NAT64 and 6to4 /
// Teredo addresses and cloud-metadata endpoints (169.254.169.254,
// fd00:ec2::254, 100.100.100.200, 192.0.0.192, 168.63.129.16). IPv4-mapped
// IPv6 addresses are unmapped first. It uses no proxy (the guard would only
// see the proxy), keeps no cookies and follows no redirect by itself. See
// [Guard]. A host that injects Options.HTTPClient owns the guard: build its
// transport with [Guard.NewTransport] or [Guard.Control].
//
// Preview: with Options.WithPreview the final page's OpenGraph, Twitter
// card, <title>, description and image are read from the same response into
// LinkResult.Preview (see [Preview] for precedence and bounds);
// [Expander.Preview] fetches any address for that purpose, and
// [ParsePreview] parses a page already in hand.
//
// An Expander is safe for concurrent use; the zero Expander uses the
// defaults.
//
// # Errors
//
// Per-link failures are *[LinkError] values (the short link, the hop, the
// URL of that hop) wrapping one of [ErrBlockedAddress] (a
// *[BlockedAddressError] naming the address and its range), [ErrScheme],
// [ErrLoop], [ErrTooManyHops], [ErrBadLocation], [ErrNoRedirect],
// [ErrStatus] (a *[StatusError]), a network error, or
// context.DeadlineExceeded / context.Canceled (also when a link found no
// fetch slot within its budget). Test them with errors.Is.
// ExpandText itself returns an error only for a nil context
// ([ErrNilContext]), a context already done on entry, or invalid Options
// (*[OptionsError], [ErrInvalidOptions]); Result.Text is then the input.
//
// # Testing
//
// The dial guard also refuses httptest servers (127.0.0.1). Tests open it
// for exactly their address with Options.AllowAddrs
// ([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) and list
// "127.0.0.1" in Options.Hosts so the server's URLs count as short links;
// or they inject Options.HTTPClient with an in-memory RoundTripper. Keep
// AllowAddrs empty in production. The package's own tests cover the guard
// with the hatch closed, redirect chains, loops, 20 hops, refresh, a 10 MB
// body, slow servers, bad schemes, private and metadata addresses, non-HTML
// targets, windows-1251 pages, concurrent expansion of one link,
// connection reuse (connections counted at the server), the cap on fetches
// in flight (requests counted at a blocking server) and what is logged; the
// finder is fuzzed (FuzzExpandText: no panic, text outside links unchanged).
// The package's benchmarks record the measured speed and memory.
package links
