# Varnish in front of the image origin (Varnish 7, with varnish-modules for xkey). Edit the
# marked backend lines; tests/test_varnish.py runs this very file (deploy/varnish_local.py).
#
# What it does, and why:
# - Caches /image/, /url/ and /info/ answers by URL (/info/'s JSON carries its original's
#   validators and tags, so a PURGE of the original drops it here too); only fmt=auto (and
#   preset) answers vary, on an Accept header first reduced to the formats the origin may choose
#   among that the client accepts, so every browser shares one entry per format instead of one
#   per Accept string.
# - Never stores an error (they come with no-store): a 404 is not replayed after an upload.
# - Keeps each object past its freshness (grace, keep): a client is answered from the stale
#   copy while Varnish revalidates it in the background with If-None-Match (a 304 from a stat
#   on the origin), and while the origin fails, for as long as its stale-if-error allows.
# - Coalesces concurrent misses for one URL into one origin request (Varnish does so itself).
# - PURGE /image/<id> goes to the origin, which checks the bearer token and drops the
#   original everywhere it keeps it; if it agrees, the objects tagged with the original's tag
#   (the Surrogate-Key or Cache-Tag it answers with) are purged here too: one request for both.

vcl 4.1;

import std;
import xkey;

backend origin {
    .host = "127.0.0.1";  # EDIT: where gunicorn listens
    .port = "8000";  # EDIT
    .connect_timeout = 2s;
    .first_byte_timeout = 65s;  # longer than gunicorn's 60 s worker timeout
    .probe = {
        .url = "/healthz";
        .interval = 2s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
    }
}

sub vcl_recv {
    if (req.method == "PURGE") {
        return (pass);  # the origin decides (token); vcl_deliver applies its answer here
    }
    if ((req.method != "GET" && req.method != "HEAD") || req.url !~ "^/(image|url|info)/") {
        return (pass);  # other methods get the origin's 405; /healthz, /metrics are never cached
    }
    unset req.http.Cookie;
    unset req.http.Authorization;
    if (req.url ~ "[?&](fmt=auto|fmt=best|preset=)") {  # answers that vary on Accept (presets may too)
        # The origin's negotiation, reduced to the formats it may choose among that the client
        # names with q > 0; its PROXY_AUTO_FORMATS order then picks. With jxl in that order,
        # uncomment the JPEG XL line.
        set req.http.X-Formats = "";
        # if (req.http.Accept ~ "image/jxl(?!\s*;\s*q=0(\.0*)?\s*(,|$))") { set req.http.X-Formats = "image/jxl,"; }
        if (req.http.Accept ~ "image/avif(?!\s*;\s*q=0(\.0*)?\s*(,|$))") {
            set req.http.X-Formats = req.http.X-Formats + "image/avif,";
        }
        if (req.http.Accept ~ "image/webp(?!\s*;\s*q=0(\.0*)?\s*(,|$))") {
            set req.http.X-Formats = req.http.X-Formats + "image/webp,";
        }
        # Then image/jpeg for a browser's image request (an image type first), */* for a script's:
        # an error answers the one as a placeholder image (PROXY_ERROR_IMAGE), the other as JSON.
        if (req.http.Accept ~ "^\s*image/") {
            set req.http.Accept = req.http.X-Formats + "image/jpeg";
        } else {
            set req.http.Accept = req.http.X-Formats + "*/*";
        }
        unset req.http.X-Formats;
    } elsif (req.http.Accept ~ "^\s*image/") {
        # An explicit format: Accept changes no image, only an error's form (PROXY_ERROR_IMAGE:
        # a placeholder for a browser's <img>, JSON for the rest), and errors are never stored.
        set req.http.Accept = "image/*";
    } else {
        set req.http.Accept = "*/*";
    }
    call image_origin_hints;
    if (std.healthy(req.backend_hint)) {
        set req.grace = 60s;  # stale-while-revalidate, while the origin answers
    }
    return (hash);
}

# Client hints (PROXY_CLIENT_HINTS=1): the origin varies on Sec-CH-Width, Sec-CH-DPR and Save-Data
# where the URL leaves w, dpr or q open, and Varnish keeps one object per value of each header it
# varies on. Rounded here as the origin rounds them (widths up to a multiple of 100,
# PROXY_WIDTH_STEP's default: change both together; densities up to a half), two phones whose slots
# are 437 and 480 px wide share one object. A hint that is not a number is dropped, as the origin
# would ignore it.
sub image_origin_hints {
    if (req.http.Sec-CH-Width ~ "^\s*[0-9]{1,5}\s*$" && std.integer(req.http.Sec-CH-Width, 0) > 0) {
        set req.http.Sec-CH-Width = (std.integer(req.http.Sec-CH-Width, 0) + 99) / 100 * 100;
    } else {
        unset req.http.Sec-CH-Width;
    }
    if (req.http.Sec-CH-DPR ~ "^\s*1(\.0*)?\s*$") {
        unset req.http.Sec-CH-DPR;  # 1 is no density at all
    } elsif (req.http.Sec-CH-DPR ~ "^\s*[2-4](\.0*)?\s*$") {
        set req.http.Sec-CH-DPR = regsub(req.http.Sec-CH-DPR, "^\s*([2-4]).*$", "\1");
    } elsif (req.http.Sec-CH-DPR ~ "^\s*[1-3]\.(?=[0-9]*[1-9])([0-4][0-9]*|50*)\s*$") {
        set req.http.Sec-CH-DPR = regsub(req.http.Sec-CH-DPR, "^\s*([1-3]).*$", "\1.5");
    } elsif (req.http.Sec-CH-DPR ~ "^\s*1\.[0-9]+\s*$") {
        set req.http.Sec-CH-DPR = "2";
    } elsif (req.http.Sec-CH-DPR ~ "^\s*2\.[0-9]+\s*$") {
        set req.http.Sec-CH-DPR = "3";
    } elsif (req.http.Sec-CH-DPR ~ "^\s*([3-9]|[1-9][0-9]+)(\.[0-9]*)?\s*$") {
        set req.http.Sec-CH-DPR = "4";
    } else {
        unset req.http.Sec-CH-DPR;
    }
    if (req.http.Save-Data ~ "(?i)^\s*on\s*$") {
        set req.http.Save-Data = "on";
    } else {
        unset req.http.Save-Data;
    }
}

sub vcl_backend_response {
    if (bereq.is_bgfetch && beresp.status >= 500) {
        return (abandon);  # a failed background revalidation: keep serving the stale copy
    }
    if (beresp.status >= 400 || beresp.http.Cache-Control ~ "no-store") {
        # Errors are answered with no-store: never kept, so an original uploaded after a 404 is
        # seen at once. Returning deliver skips the built-in VCL that would have honoured it.
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    # What xkey indexes objects by: the origin's tags, whichever header PROXY_TAG_HEADERS names
    # (Surrogate-Key space-separated, Cache-Tag comma-separated; xkey reads both).
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    } elsif (beresp.http.Cache-Tag) {
        set beresp.http.xkey = beresp.http.Cache-Tag;
    }
    # Stale copies stay usable for the origin's stale-if-error (grace, narrowed to 60 s by
    # vcl_recv while the origin is healthy), and revalidatable by ETag for a week after that.
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control, ".*stale-if-error=([0-9]+).*", "\1s"), 60s);
    }
    set beresp.keep = 7d;
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (req.method == "PURGE") {
        if (resp.status == 200 && resp.http.Surrogate-Key) {
            set resp.http.X-Front-Purged = xkey.purge(resp.http.Surrogate-Key);
        } elsif (resp.status == 200 && resp.http.Cache-Tag) {
            set resp.http.X-Front-Purged = xkey.purge(regsuball(resp.http.Cache-Tag, "[, ]+", " "));
        }
        return (deliver);
    }
    # The origin's own X-Cache says how it answered Varnish; clients get Varnish's.
    if (resp.http.X-Cache) {
        set resp.http.X-Origin-Cache = resp.http.X-Cache;
    }
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    return (deliver);
}
