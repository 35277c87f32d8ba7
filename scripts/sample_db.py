#!/usr/bin/env python3
"""(Re)create the sample e-commerce database of the local demo.

Usage:  python scripts/sample_db.py --config config/pipeline.yaml --source shop [--scale 1.0]

Drops and recreates (idempotent) a set of related tables in the ``public`` schema of the source's
database and fills them server-side with ``generate_series`` and ``random()`` after ``setseed(0.42)``,
so two runs produce the same data and a run takes a few seconds. At scale 1.0 the tables hold about
half a million rows: customers 20k, products 2k, orders 100k, order_items ~250k, shipments ~70k,
page_views 50k, plus smaller ones.

The tables exercise every column type the pipeline maps (smallint ... int[]/text[], an enum, money,
json/jsonb, bytea, numeric without precision) and the awkward shapes it must cope with:

* ``page_views``    no primary key (append-only log)
* ``coupons``       text primary key
* ``order_items``   composite primary key (order_id, line_no)
* ``shipments``     gappy, skewed bigint key including negatives and values beyond int32
* ``"Gift Cards"``  mixed-case name with a space, mixed-case column names
* ``returns``       empty

``ANALYZE`` runs at the end so the catalog's row estimates are filled in.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from lib.config import load_config  # noqa: E402
from lib.errors import PipelineError  # noqa: E402

SEED = 0.42

# Dependency order (parents first); dropped in reverse.
TABLES = [
    "categories",
    "customers",
    "products",
    "coupons",
    "orders",
    "order_items",
    "shipments",
    "product_reviews",
    "Gift Cards",
    "page_views",
    "returns",
]
TYPES = ["order_status", "return_reason"]

BASE_COUNTS = {
    "customers": 20_000,
    "products": 2_000,
    "coupons": 500,
    "orders": 100_000,
    "product_reviews": 15_000,
    "Gift Cards": 5_000,
    "page_views": 50_000,
}


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def arr(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(lit(v) for v in values) + "]"


def pick(values: list[str], r: str) -> str:
    """SQL choosing one of ``values`` with the uniform random number expression ``r`` in [0, 1)."""
    return f"({arr(values)})[1 + floor({r} * {len(values)})::int]"


FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Emily",
    "Mateo",
    "Ella",
    "Jack",
    "Chloé",
    "Søren",
    "José",
    "Zoë",
    "Björn",
    "Aiko",
    "Priya",
    "Wei",
    "Fatima",
    "Mohammed",
    "Olga",
    "Łukasz",
    "Siobhán",
    "Ingrid",
    "Kwame",
    "Yuki",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Müller",
    "O'Brien",
    "Nakamura",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Jensen",
    "Svensson",
    "van der Berg",
    "Øvergaard",
    "Chen",
    "Patel",
    "Kim",
    "Nguyen",
    "Silva",
    "Okafor",
    "Schmidt",
    "Novak",
    "Andersson",
    "Fernández",
]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "SE", "ES", "IT", "CA", "AU", "JP", "BR", "IN", "PL", "IE", "DK"]
CITIES = [
    "Springfield",
    "Riverside",
    "London",
    "Berlin",
    "Paris",
    "Amsterdam",
    "Stockholm",
    "Madrid",
    "Milan",
    "Toronto",
    "Sydney",
    "Tokyo",
    "São Paulo",
    "Mumbai",
    "Kraków",
    "Dublin",
    "Aarhus",
]
STREETS = ["Main St", "High Street", "Hauptstraße", "Rue de la Paix", "Kerkstraat", "Oak Avenue", "Market Sq", "Elm Road"]
CATEGORIES = {
    "Electronics": ["Phones", "Laptops", "Audio", "Cameras", "Accessories"],
    "Home & Kitchen": ["Cookware", "Furniture", "Bedding", "Lighting", "Storage"],
    "Clothing": ["Men", "Women", "Kids", "Shoes", "Outerwear"],
    "Books": ["Fiction", "Non-fiction", "Children's", "Comics", "Textbooks"],
    "Sports & Outdoors": ["Camping", "Cycling", "Fitness", "Running", "Water sports"],
    "Toys & Games": ["Board games", "Puzzles", "Building sets", "Dolls", "Outdoor toys"],
}
ADJECTIVES = ["Classic", "Ultra", "Eco", "Smart", "Compact", "Deluxe", "Vintage", "Pro", "Mini", "Rugged", "Ergonomic", "Premium"]
MATERIALS = ["Steel", "Bamboo", "Cotton", "Leather", "Carbon", "Oak", "Ceramic", "Wool", "Aluminium", "Glass"]
NOUNS = [
    "Speaker",
    "Backpack",
    "Lamp",
    "Kettle",
    "Jacket",
    "Notebook",
    "Tent",
    "Puzzle",
    "Chair",
    "Headphones",
    "Bottle",
    "Watch",
    "Blanket",
    "Drone",
]
COLORS = ["black", "white", "red", "navy", "olive", "sand", "grey", "teal"]
SIZES = ["XS", "S", "M", "L", "XL", "one size"]
CUSTOMER_TAGS = ["newsletter", "vip", "returning", "wholesale", "student", "b2b"]
COUPON_WORDS = ["SAVE", "WELCOME", "SPRING", "SUMMER", "BlackFriday", "vip", "FREESHIP", "Loyalty"]
CARRIERS = ["UPS", "FedEx", "DHL Express", "PostNL", "Royal Mail", "USPS", "GLS"]
PAGES = ["/", "/search", "/cart", "/checkout", "/account", "/help/shipping", "/sale", "/products/", "/categories/"]
REFERRERS = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://t.co/abc",
    "https://news.ycombinator.com/",
    "https://www.facebook.com/",
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
]
REVIEW_TITLES = [
    "Great value",
    "Does the job",
    "Not as described",
    "Love it!",
    "Broke after a week",
    "Five stars",
    "Meh",
    "Would buy again",
]
REVIEW_BODIES = [
    "Arrived quickly and works as advertised.",
    "Quality is fine for the price, but the packaging was damaged.",
    "Exactly what I needed. Fits perfectly.",
    "Stopped working after a few days; returned it.",
    "Colour is slightly different from the photos — still happy.",
    'Solid build, "premium" feel, a bit heavy.',
]
GIFT_MESSAGES = ["Happy birthday!", "Merry Christmas 🎄", "Thanks for everything", "Congratulations on the new job", "Enjoy! — J."]


def counts(scale: float) -> dict[str, int]:
    return {name: max(1, round(n * scale)) for name, n in BASE_COUNTS.items()}


def drop_statements() -> list[str]:
    stmts = [f"DROP TABLE IF EXISTS public.{quote(t)} CASCADE" for t in reversed(TABLES)]
    stmts += [f"DROP TYPE IF EXISTS public.{t} CASCADE" for t in TYPES]
    return stmts


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if name != name.lower() or " " in name else name


DDL = """
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
CREATE TYPE return_reason AS ENUM ('damaged', 'wrong_item', 'not_as_described', 'changed_mind', 'other');

CREATE TABLE categories (
    category_id  smallint PRIMARY KEY,
    parent_id    smallint REFERENCES categories (category_id),
    name         varchar(60) NOT NULL,
    slug         varchar(80) NOT NULL UNIQUE,
    description  text
);

CREATE TABLE customers (
    customer_id     integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_uuid   uuid NOT NULL UNIQUE,
    email           varchar(254) NOT NULL UNIQUE,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    phone           text,
    country_code    char(2) NOT NULL,
    birth_date      date,
    signup_at       timestamptz NOT NULL,
    is_active       boolean NOT NULL,
    loyalty_tier    smallint NOT NULL,
    lifetime_value  numeric(12,2),
    latitude        double precision,
    longitude       double precision,
    tags            text[],
    last_login_ip   inet,
    preferences     jsonb
);

CREATE TABLE products (
    product_id           integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sku                  char(12) NOT NULL UNIQUE,
    name                 varchar(200) NOT NULL,
    description          text,
    category_id          smallint NOT NULL REFERENCES categories (category_id),
    price                numeric(12,2) NOT NULL,
    list_price           money NOT NULL,
    weight_kg            numeric,
    rating               real,
    popularity_score     double precision,
    in_stock             boolean NOT NULL,
    stock_qty            integer NOT NULL,
    attributes           json,
    thumbnail            bytea,
    related_product_ids  integer[],
    search_keywords      text[],
    created_at           timestamp NOT NULL,
    updated_at           timestamptz
);

CREATE TABLE coupons (
    code                   text PRIMARY KEY,
    description            text,
    discount_pct           numeric(5,2),
    discount_amount        money,
    valid_from             date NOT NULL,
    valid_until            date,
    max_uses               integer,
    times_used             integer NOT NULL DEFAULT 0,
    is_active              boolean NOT NULL,
    applicable_categories  smallint[]
);

CREATE TABLE orders (
    order_id                 bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_uuid               uuid NOT NULL UNIQUE,
    customer_id              integer NOT NULL REFERENCES customers (customer_id),
    status                   order_status NOT NULL,
    ordered_at               timestamptz NOT NULL,
    requested_delivery_date  date,
    preferred_delivery_time  time,
    fulfillment_time         interval,
    coupon_code              text REFERENCES coupons (code),
    currency                 char(3) NOT NULL,
    item_count               smallint NOT NULL,
    subtotal                 numeric(12,2) NOT NULL,
    shipping_fee             money NOT NULL,
    total                    numeric(12,2) NOT NULL,
    is_gift                  boolean NOT NULL,
    channel                  varchar(20) NOT NULL,
    notes                    text,
    shipping_address         jsonb NOT NULL,
    client_ip                inet
);

CREATE TABLE order_items (
    order_id       bigint NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no        smallint NOT NULL,
    product_id     integer NOT NULL REFERENCES products (product_id),
    quantity       smallint NOT NULL,
    unit_price     numeric(12,2) NOT NULL,
    discount_rate  real NOT NULL DEFAULT 0,
    line_total     numeric(12,2) NOT NULL,
    gift_wrap      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE shipments (
    shipment_id        bigint PRIMARY KEY,
    order_id           bigint NOT NULL REFERENCES orders (order_id),
    carrier            varchar(20) NOT NULL,
    tracking_number    char(18),
    service_level      text NOT NULL,
    shipped_at         timestamp NOT NULL,
    delivered_at       timestamp,
    transit_time       interval,
    package_weight_kg  numeric(8,3),
    label              bytea,
    events             text[]
);

CREATE TABLE product_reviews (
    review_id          integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    product_id         integer NOT NULL REFERENCES products (product_id),
    customer_id        integer NOT NULL REFERENCES customers (customer_id),
    rating             smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title              varchar(120),
    body               text,
    helpful_votes      integer NOT NULL DEFAULT 0,
    verified_purchase  boolean NOT NULL,
    created_at         timestamptz NOT NULL
);

CREATE TABLE "Gift Cards" (
    "cardId"          integer PRIMARY KEY,
    code              varchar(19) NOT NULL UNIQUE,
    "purchasedBy"     integer REFERENCES customers (customer_id),
    "recipientEmail"  varchar(254),
    "InitialValue"    numeric(12,2) NOT NULL,
    "Balance"         money NOT NULL,
    "issuedAt"        timestamptz NOT NULL,
    expires_on        date,
    "isRedeemed"      boolean NOT NULL,
    "Message"         text
);

-- append-only click log: deliberately no primary key (view_id is unique but not declared so)
CREATE TABLE page_views (
    view_id       bigint NOT NULL,
    viewed_at     timestamp NOT NULL,
    session_id    uuid NOT NULL,
    customer_id   integer,
    url           text NOT NULL,
    referrer      text,
    user_agent    varchar(200),
    ip_address    inet,
    time_on_page  interval,
    scroll_depth  double precision,
    is_bounce     boolean
);

-- deliberately left empty
CREATE TABLE returns (
    return_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        bigint NOT NULL,
    line_no         smallint NOT NULL,
    reason          return_reason NOT NULL,
    comment         text,
    quantity        smallint NOT NULL,
    refund_amount   numeric(12,2),
    restocking_fee  money,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamp,
    FOREIGN KEY (order_id, line_no) REFERENCES order_items (order_id, line_no)
);
"""


def random_columns(k: int) -> str:
    """``random() AS r1, ..., random() AS rk`` for a subquery fenced with ``OFFSET 0``."""
    return ", ".join(f"random() AS r{i}" for i in range(1, k + 1))


def load_statements(n: dict[str, int]) -> list[tuple[str, str]]:
    """(label, SQL) pairs filling every table, in dependency order."""
    n_cust, n_prod, n_coup, n_ord = n["customers"], n["products"], n["coupons"], n["orders"]
    n_rev, n_gift, n_views = n["product_reviews"], n["Gift Cards"], n["page_views"]

    categories = []
    for pid, parent in enumerate(CATEGORIES, start=1):
        slug = parent.lower().replace(" & ", "-").replace(" ", "-")
        categories.append(f"({pid}, NULL, {lit(parent)}, {lit(slug)}, {lit('Everything in ' + parent)})")
    cid = len(CATEGORIES)
    for pid, (parent, children) in enumerate(CATEGORIES.items(), start=1):
        pslug = parent.lower().replace(" & ", "-").replace(" ", "-")
        for i, child in enumerate(children):
            cid += 1
            slug = pslug + "/" + child.lower().replace("'", "").replace(" ", "-")
            desc = "NULL" if i == 4 else ("''" if i == 3 else lit(f"{child} in {parent}"))
            categories.append(f"({cid}, {pid}, {lit(child)}, {lit(slug)}, {desc})")
    n_cat = cid

    first = pick(FIRST_NAMES, "r1")
    last = pick(LAST_NAMES, "r2")
    stmts = [
        (
            "categories",
            "INSERT INTO categories (category_id, parent_id, name, slug, description) VALUES\n  " + ",\n  ".join(categories),
        ),
        (
            "customers",
            f"""
INSERT INTO customers (customer_id, customer_uuid, email, first_name, last_name, phone, country_code, birth_date,
                       signup_at, is_active, loyalty_tier, lifetime_value, latitude, longitude, tags, last_login_ip,
                       preferences)
SELECT g,
       md5('customer:' || g)::uuid,
       regexp_replace(translate(lower(first_name || '.' || last_name), 'éøöüóáłå', 'eoouoala'), '[^a-z.]', '', 'g') || g || '@'
           || {pick(["example.com", "mail.test", "shop.example.org", "inbox.invalid"], "r3")},
       first_name,
       last_name,
       CASE WHEN r4 < 0.10 THEN NULL WHEN r4 < 0.15 THEN ''
            ELSE '+' || (1 + floor(r5 * 98))::int || ' ' || lpad(floor(r6 * 1e9)::bigint::text, 9, '0') END,
       {pick(COUNTRIES, "power(r7, 2)")},
       CASE WHEN r8 < 0.05 THEN NULL ELSE date '1945-01-01' + floor(r8 * 22000)::int END,
       timestamptz '2019-01-01 00:00:00+00' + ((g - 1 + r9) / {n_cust}::float8) * interval '1800 days',
       r10 > 0.08,
       (floor(power(r11, 3) * 4))::smallint,
       CASE WHEN r12 < 0.2 THEN NULL ELSE round((power(r12, 4) * 25000)::numeric, 2) END,
       CASE WHEN r13 < 0.1 THEN NULL ELSE -60 + r13 * 130 END,
       CASE WHEN r13 < 0.1 THEN NULL ELSE -170 + r14 * 340 END,
       CASE WHEN r15 < 0.3 THEN NULL ELSE ({arr(CUSTOMER_TAGS)})[1 + floor(r16 * 3)::int : floor(r15 * 7)::int] END,
       CASE WHEN r17 < 0.10 THEN NULL
            WHEN r17 < 0.20 THEN ('2001:db8:' || to_hex(g) || '::' || to_hex(floor(r18 * 65535)::int))::inet
            WHEN r17 < 0.22 THEN ('10.' || floor(r18 * 256)::int || '.' || (g % 256) || '.0/24')::inet
            ELSE (1 + floor(r18 * 222)::int || '.' || floor(r19 * 256)::int || '.' || (g % 256) || '.'
                  || 1 + floor(r20 * 254)::int)::inet END,
       CASE WHEN r21 < 0.1 THEN NULL
            ELSE jsonb_build_object(
                'newsletter', r21 < 0.55,
                'language', {pick(["en", "de", "fr", "nl", "sv", "es", "ja"], "r22")},
                'notifications', jsonb_build_object('email', r23 < 0.7, 'sms', r23 < 0.2),
                'favourite_categories', to_jsonb(ARRAY[1 + floor(r24 * {n_cat})::int, 1 + floor(r22 * {n_cat})::int]),
                'max_spend', CASE WHEN r24 < 0.5 THEN NULL ELSE round((r24 * 1000)::numeric, 2) END) END
FROM (SELECT g, {first} AS first_name, {last} AS last_name, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15,
             r16, r17, r18, r19, r20, r21, r22, r23, r24
      FROM (SELECT g, {random_columns(24)} FROM generate_series(1, {n_cust}) AS g OFFSET 0) AS r
      OFFSET 0) AS s
""",
        ),
        (
            "products",
            f"""
INSERT INTO products (product_id, sku, name, description, category_id, price, list_price, weight_kg, rating,
                      popularity_score, in_stock, stock_qty, attributes, thumbnail, related_product_ids,
                      search_keywords, created_at, updated_at)
SELECT g,
       'SKU-' || upper(to_hex(((g::bigint * 2654435761) % 4294967291)::bigint)),
       name,
       CASE WHEN r4 < 0.10 THEN NULL WHEN r4 < 0.15 THEN ''
            ELSE 'The ' || lower(name) || ' you have been waiting for. ' || repeat('Durable, light and easy to clean. ', 1 + floor(r5 * 4)::int) END,
       {len(CATEGORIES)} + 1 + floor(r6 * {n_cat - len(CATEGORIES)})::int,
       price,
       (price * (1 + round((r7 * 0.4)::numeric, 2)))::numeric(12,2)::money,
       CASE WHEN r8 < 0.05 THEN NULL
            WHEN r8 < 0.08 THEN round((200 + r9 * 2000)::numeric, 0)
            ELSE round((power(r9, 2) * 40)::numeric, floor(r10 * 4)::int) END,
       CASE WHEN r11 < 0.12 THEN NULL ELSE round((1 + r11 * 4)::numeric, 1)::real END,
       -ln(1 - r12) * 1000 / (1 + g % 7),
       r13 > 0.1,
       CASE WHEN r13 > 0.1 THEN floor(power(r14, 2) * 5000)::int ELSE 0 END,
       CASE WHEN r15 < 0.1 THEN NULL
            ELSE json_build_object(
                'color', {pick(COLORS, "r16")},
                'size', {pick(SIZES, "r17")},
                'dimensions_cm', json_build_array(round((5 + r15 * 95)::numeric, 1), round((5 + r16 * 60)::numeric, 1), round((1 + r17 * 40)::numeric, 1)),
                'warranty_years', floor(r18 * 4)::int,
                'fragile', r18 < 0.15) END,
       CASE WHEN r19 < 0.2 THEN NULL
            ELSE '\\x89504e470d0a1a0a'::bytea || decode(md5('thumb:' || g) || md5('thumb2:' || g), 'hex') END,
       CASE WHEN r20 < 0.25 THEN NULL
            ELSE (ARRAY[1 + floor(r21 * {n_prod})::int, 1 + floor(r22 * {n_prod})::int, 1 + floor(r23 * {n_prod})::int,
                        1 + floor(r24 * {n_prod})::int])[1 : floor(r20 * 5)::int] END,
       CASE WHEN r25 < 0.02 THEN ARRAY[]::text[]
            WHEN r25 < 0.04 THEN array_append(string_to_array(lower(name), ' '), NULL)
            ELSE string_to_array(lower(name), ' ') END,
       timestamp '2018-06-01 09:00:00' + ((g - 1 + r26) / {n_prod}::float8) * interval '2000 days',
       CASE WHEN r27 < 0.3 THEN NULL
            ELSE timestamptz '2024-01-01 00:00:00+00' + r27 * interval '400 days' END
FROM (SELECT g, {pick(ADJECTIVES, "r1")} || ' ' || {pick(MATERIALS, "r2")} || ' ' || {pick(NOUNS, "r3")} AS name,
             round((4.99 + power(r28, 3) * 1995)::numeric, 2) AS price,
             r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, r21, r22, r23, r24, r25,
             r26, r27
      FROM (SELECT g, {random_columns(28)} FROM generate_series(1, {n_prod}) AS g OFFSET 0) AS r
      OFFSET 0) AS s
""",
        ),
        (
            "coupons",
            f"""
INSERT INTO coupons (code, description, discount_pct, discount_amount, valid_from, valid_until, max_uses, times_used,
                     is_active, applicable_categories)
SELECT {pick(COUPON_WORDS, "r1")} || '-' || upper(to_hex(g * 7919)),
       CASE WHEN r2 < 0.1 THEN NULL WHEN r2 < 0.15 THEN '' ELSE 'Promotion #' || g END,
       CASE WHEN r3 < 0.7 THEN round((5 + floor(r4 * 8) * 5)::numeric, 2) END,
       CASE WHEN r3 >= 0.7 THEN (5 + floor(r4 * 10) * 5)::numeric::money END,
       date '2021-01-01' + floor(r5 * 1200)::int,
       CASE WHEN r6 < 0.2 THEN NULL ELSE date '2021-01-01' + floor(r5 * 1200)::int + 7 + floor(r6 * 90)::int END,
       CASE WHEN r7 < 0.4 THEN NULL ELSE (100 * (1 + floor(r7 * 50)))::int END,
       floor(r8 * 100)::int,
       r9 > 0.3,
       CASE WHEN r10 < 0.6 THEN NULL
            ELSE ARRAY[{len(CATEGORIES)} + 1 + floor(r11 * {n_cat - len(CATEGORIES)}),
                       {len(CATEGORIES)} + 1 + floor(r12 * {n_cat - len(CATEGORIES)})]::smallint[] END
FROM (SELECT g, {random_columns(12)} FROM generate_series(1, {n_coup}) AS g OFFSET 0) AS r
""",
        ),
        # Order lines are drawn first (into a temporary table) so that the orders' totals are consistent.
        (
            None,
            f"""
CREATE TEMPORARY TABLE tmp_items ON COMMIT DROP AS
SELECT o AS order_id,
       l::smallint AS line_no,
       product_id,
       quantity,
       p.price AS unit_price,
       discount_rate,
       round(p.price * quantity * (1 - discount_rate::numeric), 2) AS line_total,
       gift_wrap
FROM (SELECT o, l,
             1 + floor(power(random(), 2) * {n_prod})::int AS product_id,
             (1 + floor(power(random(), 4) * 6))::smallint AS quantity,
             (CASE WHEN random() < 0.8 THEN 0 ELSE round((floor(random() * 6) * 0.05)::numeric, 2) END)::real AS discount_rate,
             random() < 0.03 AS gift_wrap
      FROM (SELECT o, 1 + floor(random() * 4)::int AS lines FROM generate_series(1, {n_ord}) AS o OFFSET 0) AS x
      CROSS JOIN LATERAL generate_series(1, x.lines) AS l
      OFFSET 0) AS i
JOIN products AS p USING (product_id)
""",
        ),
        (
            None,
            """
CREATE TEMPORARY TABLE tmp_order_sums ON COMMIT DROP AS
SELECT order_id, count(*)::smallint AS item_count, sum(line_total) AS subtotal FROM tmp_items GROUP BY order_id
""",
        ),
        (
            "orders",
            f"""
INSERT INTO orders (order_id, order_uuid, customer_id, status, ordered_at, requested_delivery_date,
                    preferred_delivery_time, fulfillment_time, coupon_code, currency, item_count, subtotal,
                    shipping_fee, total, is_gift, channel, notes, shipping_address, client_ip)
SELECT s.g,
       md5('order:' || s.g)::uuid,
       s.customer_id,
       s.status,
       s.ordered_at,
       CASE WHEN r5 < 0.7 THEN NULL ELSE (s.ordered_at AT TIME ZONE 'UTC')::date + 2 + floor(r5 * 10)::int END,
       CASE WHEN r6 < 0.6 THEN NULL ELSE time '08:00' + floor(r6 * 24) * interval '30 minutes' END,
       CASE WHEN s.status IN ('shipped', 'delivered', 'refunded')
            THEN make_interval(days => floor(power(r7, 2) * 5)::int, hours => floor(r8 * 24)::int,
                               mins => floor(r9 * 60)::int, secs => round((r10 * 60)::numeric, 3)::float8)
            END,
       c.code,
       {pick(["USD", "USD", "EUR", "EUR", "GBP", "SEK", "JPY"], "r11")},
       t.item_count,
       t.subtotal,
       s.fee::money,
       t.subtotal + s.fee - CASE WHEN c.code IS NULL OR c.discount_pct IS NULL THEN 0
                                 ELSE round(t.subtotal * c.discount_pct / 100, 2) END,
       r12 < 0.05,
       {pick(["web", "web", "web", "ios", "android", "marketplace", "phone"], "r13")},
       CASE WHEN r14 < 0.75 THEN NULL WHEN r14 < 0.85 THEN ''
            ELSE {pick(["Leave at the door", "Please ring twice", "Gift — no invoice please", "Call before delivery", "Fragile!"], "r15")} END,
       jsonb_build_object(
           'line1', (1 + floor(r16 * 250)::int) || ' ' || {pick(STREETS, "r17")},
           'line2', CASE WHEN r18 < 0.8 THEN NULL ELSE 'Apt ' || (1 + floor(r18 * 40)::int) END,
           'city', {pick(CITIES, "r19")},
           'postcode', lpad(floor(r20 * 99999)::int::text, 5, '0'),
           'country', {pick(COUNTRIES, "power(r21, 2)")}),
       CASE WHEN r22 < 0.15 THEN NULL
            ELSE (1 + floor(r22 * 222)::int || '.' || floor(r23 * 256)::int || '.' || floor(r24 * 256)::int || '.'
                  || 1 + floor(r16 * 254)::int)::inet END
FROM (SELECT g,
             1 + floor(power(r1, 1.5) * {n_cust})::int AS customer_id,
             CASE WHEN g > {n_ord} * 0.98 THEN (CASE WHEN r2 < 0.5 THEN 'pending' ELSE 'paid' END)
                  WHEN g > {n_ord} * 0.95 THEN (CASE WHEN r2 < 0.1 THEN 'paid' ELSE 'shipped' END)
                  WHEN r2 < 0.05 THEN 'cancelled'
                  WHEN r2 < 0.08 THEN 'refunded'
                  ELSE 'delivered' END::order_status AS status,
             timestamptz '2022-01-01 00:00:00+00' + ((g - 1 + r3) / {n_ord}::float8) * interval '1000 days' AS ordered_at,
             CASE WHEN r4 < 0.3 THEN 0 ELSE round((2.95 + floor(r4 * 4) * 2)::numeric, 2) END AS fee,
             CASE WHEN r25 < 0.15 THEN 1 + floor(r26 * {n_coup})::int END AS coupon_no,
             r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, r21, r22, r23, r24
      FROM (SELECT g, {random_columns(26)} FROM generate_series(1, {n_ord}) AS g OFFSET 0) AS r
      OFFSET 0) AS s
JOIN tmp_order_sums AS t ON t.order_id = s.g
LEFT JOIN (SELECT row_number() OVER (ORDER BY code) AS coupon_no, code, discount_pct FROM coupons) AS c
       ON c.coupon_no = s.coupon_no
ORDER BY s.g
""",
        ),
        (
            "order_items",
            """
INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, discount_rate, line_total, gift_wrap)
SELECT order_id, line_no, product_id, quantity, unit_price, discount_rate, line_total, gift_wrap
FROM tmp_items ORDER BY order_id, line_no
""",
        ),
        (
            "shipments",
            # shipment_id = k*|k|*100003 + jitter, k = rn - m/3: strictly increasing in rn, negative for the
            # first third, gaps growing quadratically (skewed for min/max range splitting), beyond int32.
            f"""
INSERT INTO shipments (shipment_id, order_id, carrier, tracking_number, service_level, shipped_at, delivered_at,
                       transit_time, package_weight_kg, label, events)
SELECT k * abs(k) * 100003 + (rn * 7919) % 100003,
       order_id,
       carrier,
       CASE WHEN r1 < 0.03 THEN NULL
            ELSE upper(substr(md5('track:' || order_id), 1, 6 + floor(r1 * 13)::int)) END,
       {pick(["standard", "express", "next-day", "economy"], "r2")},
       shipped_at,
       CASE WHEN status IN ('delivered', 'refunded') THEN shipped_at + transit END,
       CASE WHEN status IN ('delivered', 'refunded') THEN transit END,
       CASE WHEN r3 < 0.05 THEN NULL ELSE round((0.05 + power(r3, 2) * 30)::numeric, 3) END,
       CASE WHEN r4 < 0.5 THEN NULL
            ELSE convert_to('%PDF-1.4 label ' || carrier || ' ' || order_id, 'UTF8') || '\\x00ff10e2'::bytea END,
       CASE WHEN status = 'shipped' THEN ARRAY['label_created', 'picked_up', 'in_transit']
            WHEN r5 < 0.1 THEN ARRAY['label_created', 'picked_up', 'in_transit', 'delivery_attempted', 'delivered']
            ELSE ARRAY['label_created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered'] END
FROM (SELECT rn - (count(*) OVER () / 3) AS k, *
      FROM (SELECT row_number() OVER (ORDER BY o.order_id) AS rn, o.order_id, o.status,
                   (o.ordered_at AT TIME ZONE 'UTC') + o.fulfillment_time AS shipped_at,
                   make_interval(days => 1 + floor(power(random(), 2) * 6)::int, hours => floor(random() * 24)::int,
                                 mins => floor(random() * 60)::int) AS transit,
                   {pick(CARRIERS, "random()")} AS carrier,
                   random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
            FROM orders AS o
            WHERE o.status IN ('shipped', 'delivered', 'refunded')
            ORDER BY o.order_id OFFSET 0) AS x) AS y
ORDER BY rn
""",
        ),
        (
            "product_reviews",
            f"""
INSERT INTO product_reviews (review_id, product_id, customer_id, rating, title, body, helpful_votes, verified_purchase,
                             created_at)
SELECT g,
       1 + floor(power(r1, 2) * {n_prod})::int,
       1 + floor(r2 * {n_cust})::int,
       (CASE WHEN r3 < 0.05 THEN 1 WHEN r3 < 0.12 THEN 2 WHEN r3 < 0.25 THEN 3 WHEN r3 < 0.55 THEN 4 ELSE 5 END)::smallint,
       CASE WHEN r4 < 0.1 THEN NULL ELSE {pick(REVIEW_TITLES, "r5")} END,
       CASE WHEN r6 < 0.15 THEN NULL WHEN r6 < 0.25 THEN '' ELSE {pick(REVIEW_BODIES, "r7")} END,
       floor(power(r8, 6) * 500)::int,
       r9 < 0.8,
       timestamptz '2022-02-01 00:00:00+00' + ((g - 1 + r10) / {n_rev}::float8) * interval '1000 days'
FROM (SELECT g, {random_columns(10)} FROM generate_series(1, {n_rev}) AS g OFFSET 0) AS r
""",
        ),
        (
            "Gift Cards",
            f"""
INSERT INTO "Gift Cards" ("cardId", code, "purchasedBy", "recipientEmail", "InitialValue", "Balance", "issuedAt",
                          expires_on, "isRedeemed", "Message")
SELECT g * 10 + (g % 7),
       upper(substr(h, 1, 4) || '-' || substr(h, 5, 4) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4)),
       CASE WHEN r1 < 0.2 THEN NULL ELSE 1 + floor(r2 * {n_cust})::int END,
       CASE WHEN r3 < 0.3 THEN NULL ELSE 'friend' || floor(r3 * 100000)::int || '@example.net' END,
       value,
       CASE WHEN r5 < 0.4 THEN value WHEN r5 < 0.7 THEN 0 ELSE round(value * r6::numeric, 2) END::money,
       issued_at,
       CASE WHEN r7 < 0.25 THEN NULL ELSE (issued_at AT TIME ZONE 'UTC')::date + 365 * (1 + floor(r7 * 3)::int) END,
       r5 >= 0.4 AND r5 < 0.7,
       CASE WHEN r8 < 0.4 THEN NULL WHEN r8 < 0.5 THEN '' ELSE {pick(GIFT_MESSAGES, "r9")} END
FROM (SELECT g, md5('giftcard:' || g) AS h,
             ({arr(["10", "25", "50", "50", "100", "150", "250"])})[1 + floor(r4 * 7)::int]::numeric(12,2) AS value,
             timestamptz '2021-11-01 00:00:00+00' + ((g - 1 + r10) / {n_gift}::float8) * interval '1100 days' AS issued_at,
             r1, r2, r3, r5, r6, r7, r8, r9
      FROM (SELECT g, {random_columns(10)} FROM generate_series(1, {n_gift}) AS g OFFSET 0) AS r
      OFFSET 0) AS s
""",
        ),
        (
            "page_views",
            f"""
INSERT INTO page_views (view_id, viewed_at, session_id, customer_id, url, referrer, user_agent, ip_address,
                        time_on_page, scroll_depth, is_bounce)
SELECT 1000000 + g,
       timestamp '2024-03-01 00:00:00' + ((g - 1 + r1) / {n_views}::float8) * interval '90 days',
       md5('session:' || (g / 7))::uuid,
       CASE WHEN r2 < 0.45 THEN NULL ELSE 1 + floor(power(r3, 1.5) * {n_cust})::int END,
       'https://shop.example.com' || page
           || CASE WHEN page = '/products/' THEN (1 + floor(power(r5, 2) * {n_prod})::int)::text
                   WHEN page = '/categories/' THEN (1 + floor(r5 * {n_cat})::int)::text
                   WHEN page = '/search' THEN '?q=' || {pick(NOUNS, "r5")} || '&page=' || (1 + floor(r6 * 3)::int)
                   ELSE '' END,
       CASE WHEN r7 < 0.4 THEN NULL WHEN r7 < 0.55 THEN '' ELSE {pick(REFERRERS, "r8")} END,
       CASE WHEN r9 < 0.03 THEN NULL ELSE {pick(USER_AGENTS, "r9")} END,
       CASE WHEN r10 < 0.05 THEN NULL
            WHEN r10 < 0.15 THEN ('2001:db8:' || to_hex(floor(r11 * 65535)::int) || '::' || to_hex(g % 65536))::inet
            ELSE (1 + floor(r11 * 222)::int || '.' || floor(r12 * 256)::int || '.' || floor(r13 * 256)::int || '.'
                  || 1 + floor(r6 * 254)::int)::inet END,
       CASE WHEN r14 < 0.05 THEN NULL ELSE make_interval(secs => round((-ln(1 - r14) * 45)::numeric, 3)::float8) END,
       CASE WHEN r15 < 0.05 THEN NULL ELSE r15 END,
       r14 < 0.3
FROM (SELECT g, {pick(PAGES, "power(r4, 0.8)")} AS page, r1, r2, r3, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15
      FROM (SELECT g, {random_columns(15)} FROM generate_series(1, {n_views}) AS g OFFSET 0) AS r
      OFFSET 0) AS s
""",
        ),
    ]
    return stmts


RESET_SEQUENCES = [
    ("customers", "customer_id"),
    ("products", "product_id"),
    ("orders", "order_id"),
    ("product_reviews", "review_id"),
]


def build(conn, scale: float) -> dict[str, int]:
    n = counts(scale)
    with conn.cursor() as cur:
        for stmt in drop_statements():
            cur.execute(stmt)
        cur.execute(DDL)
        cur.execute("SELECT setseed(%s)", (SEED,))
        for _label, stmt in load_statements(n):
            cur.execute(stmt)
        for table, column in RESET_SEQUENCES:
            cur.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({t}, {c}), (SELECT max({ci}) FROM {ti}))").format(
                    t=sql.Literal(table), c=sql.Literal(column), ci=sql.Identifier(column), ti=sql.Identifier(table)
                )
            )
    conn.commit()
    # VACUUM cannot run inside a transaction block; ANALYZE fills reltuples / pg_stats for the planner.
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in TABLES:
            cur.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier("public"), sql.Identifier(table)))
        rows = {}
        for table in TABLES:
            cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier("public"), sql.Identifier(table)))
            rows[table] = cur.fetchone()[0]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="(Re)create the sample e-commerce database of a configured source.")
    parser.add_argument("--config", required=True, help="pipeline YAML config, e.g. config/pipeline.yaml")
    parser.add_argument("--source", required=True, help="source name in the config, e.g. shop")
    parser.add_argument("--scale", type=float, default=1.0, help="row-count multiplier (default 1.0, ~0.5M rows)")
    args = parser.parse_args(argv)
    if not args.scale > 0:
        parser.error("--scale must be positive")

    try:
        src = load_config(args.config).source(args.source)
    except PipelineError as exc:
        print(f"sample_db: {exc}", file=sys.stderr)
        return 2
    if src.type != "postgres":
        print(f"sample_db: source {args.source!r} is {src.type}, only postgres is supported", file=sys.stderr)
        return 2
    c = src.connection
    target = f"{c.user}@{c.host}:{c.port}/{c.database}"
    print(f"sample_db: (re)creating sample tables in {target} schema public, scale {args.scale:g}")

    started = time.monotonic()
    try:
        conn = psycopg2.connect(
            host=c.host,
            port=c.port,
            dbname=c.database,
            user=c.user,
            password=c.password,
            application_name="sample_db",
            connect_timeout=10,
        )
    except psycopg2.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"sample_db: cannot connect to {target}: {message}", file=sys.stderr)
        return 1
    try:
        rows = build(conn, args.scale)
    except psycopg2.Error as exc:
        message = (exc.pgerror or str(exc)).strip()
        print(f"sample_db: failed: {message}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    elapsed = time.monotonic() - started

    width = max(len(t) for t in TABLES) + 2
    for table in TABLES:
        print(f"  {quote(table):<{width}} {rows[table]:>10,} rows")
    print(f"sample_db: {len(TABLES)} tables, {sum(rows.values()):,} rows in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
