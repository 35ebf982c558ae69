"""The embedded geographic pipeline on hand-written sentences that no training
doc contains: "City, Region", "City (Region)" and "City in Region" for
ambiguous city names, each city with two or more namesakes in the KB;
countries that US towns are named after; end-to-end sentences."""

import pytest

from entity_linker.cli.link import load_pipeline

# (city, the region named with it, the region or country code it must lie in)
PLACES = [
    ("Springfield", "Illinois", "Illinois"), ("Springfield", "Massachusetts", "Massachusetts"),
    ("Springfield", "Missouri", "Missouri"), ("Springfield", "Oregon", "Oregon"),
    ("Portland", "Maine", "Maine"), ("Portland", "Oregon", "Oregon"),
    ("Athens", "Georgia", "Georgia"), ("Athens", "Ohio", "Ohio"), ("Athens", "Greece", "GR"),
    ("Cambridge", "Massachusetts", "Massachusetts"), ("Cambridge", "England", "England"),
    ("London", "Ontario", "Ontario"), ("London", "England", "England"),
    ("Paris", "Texas", "Texas"), ("Paris", "France", "FR"), ("Paris", "Tennessee", "Tennessee"),
    ("Victoria", "British Columbia", "British Columbia"), ("Victoria", "Texas", "Texas"),
    ("Birmingham", "Alabama", "Alabama"), ("Birmingham", "England", "England"),
    ("Manchester", "New Hampshire", "New Hampshire"), ("Manchester", "England", "England"),
    ("Richmond", "Virginia", "Virginia"), ("Richmond", "California", "California"),
    ("Columbus", "Georgia", "Georgia"), ("Columbus", "Ohio", "Ohio"),
    ("Kingston", "Jamaica", "JM"), ("Kingston", "Ontario", "Ontario"),
    ("Perth", "Scotland", "Scotland"), ("Perth", "Australia", "AU"),
    ("Valencia", "Venezuela", "VE"), ("Valencia", "Spain", "ES"),
    ("Hamilton", "Ontario", "Ontario"), ("Hamilton", "New Zealand", "NZ"),
    ("Alexandria", "Virginia", "Virginia"), ("Alexandria", "Egypt", "EG"),
    ("Moscow", "Idaho", "Idaho"), ("Moscow", "Russia", "RU"),
    ("Dublin", "Ohio", "Ohio"), ("Dublin", "Ireland", "IE"),
    ("Berlin", "New Hampshire", "New Hampshire"), ("Berlin", "Germany", "DE"),
    ("Toledo", "Spain", "ES"), ("Toledo", "Ohio", "Ohio"),
    ("Lafayette", "Louisiana", "Louisiana"), ("Lafayette", "Indiana", "Indiana"),
    ("Aurora", "Illinois", "Illinois"), ("Aurora", "Colorado", "Colorado"),
    ("Córdoba", "Argentina", "AR"), ("Córdoba", "Spain", "ES"),
    ("San Jose", "Costa Rica", "CR"), ("San Jose", "California", "California"),
    ("Newcastle", "Australia", "AU"), ("Santiago", "Chile", "CL"),
    ("Jackson", "Mississippi", "Mississippi"), ("Jackson", "Tennessee", "Tennessee"),
    ("Bristol", "Tennessee", "Tennessee"), ("Bristol", "England", "England"),
    ("Salem", "Oregon", "Oregon"), ("Salem", "Massachusetts", "Massachusetts"),
]
TEMPLATES = ["The mayor of {city}, {region} spoke on Monday.",
             "She moved to {city} ({region}) last year.",
             "Flooding hit {city} in {region} overnight."]


@pytest.fixture(scope="module")
def geo_nlp(real_geonames):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENTITY_LINKER_CACHE", str(real_geonames["cache"]))
        yield load_pipeline(None), real_geonames["meta"]


def test_a_city_named_with_its_region_is_linked_inside_that_region(geo_nlp):
    nlp, meta = geo_nlp
    docs, expected = [], []
    for city, region, where in PLACES:
        for template in TEMPLATES:
            text = template.format(city=city, region=region)
            doc = nlp.make_doc(text)
            start = text.index(city)
            second = text.index(region, start + len(city))
            doc.ents = [doc.char_span(start, start + len(city), label="LOC"),
                        doc.char_span(second, second + len(region), label="LOC")]
            docs.append(doc)
            expected.append(where)
    wrong = []
    for doc, where in zip(nlp.pipe(docs, disable=["ner"]), expected):
        record = meta.get(doc.ents[0].kb_id_)
        if record is None or record.kind != "city" or where not in (record.admin1,
                                                                     record.country_code):
            wrong.append((doc.text, record))
    assert not wrong, f"{len(wrong)} of {len(docs)} wrong: {wrong[:5]}"


# End to end (the pipeline's own NER): mention -> (kind, division or country code).
END_TO_END = {
    "The company moved from Springfield, Illinois to Paris, Texas, two hours from Dallas.": {
        "Springfield": ("city", "Illinois"), "Illinois": ("state", "US"),
        "Paris": ("city", "Texas"), "Texas": ("state", "US"), "Dallas": ("city", "Texas")},
    # Wilmington, Ohio has "Armenia" among its alternate names; prior_gate keeps it out.
    "Georgia and Armenia signed a treaty in Tbilisi.": {
        "Georgia": ("country", "GE"), "Armenia": ("country", "AM"), "Tbilisi": ("city", "Tbilisi")},
    "The storm hit Georgia and Florida.": {
        "Georgia": ("state", "US"), "Florida": ("state", "US")},
    # The NER misses Maine; the spotter's containers setting finds it beside Portland.
    "She flew from Portland, Maine to Boston.": {
        "Portland": ("city", "Maine"), "Maine": ("state", "US")},
    "London, Ontario had a snowstorm.": {
        "London": ("city", "Ontario"), "Ontario": ("state", "CA")},
    "She flew from Portland, Oregon to Athens, Georgia.": {
        "Portland": ("city", "Oregon"), "Athens": ("city", "Georgia")},
    "Protests spread across England, Scotland and Wales": {
        "England": ("state", "GB"), "Scotland": ("state", "GB"), "Wales": ("state", "GB")},
}


@pytest.mark.parametrize("text", list(END_TO_END))
def test_the_embedded_pipeline_links_countries_states_and_cities(geo_nlp, text):
    nlp, meta = geo_nlp
    found = {}
    for ent in nlp(text).ents:
        record = meta.get(ent.kb_id_)
        if record is not None:
            found[ent.text] = (record.kind, record.admin1 if record.kind == "city"
                               else record.country_code)
    for mention, expected in END_TO_END[text].items():
        assert found.get(mention) == expected, (mention, found)


# Countries that share their name with US towns, in sentences about US places
# in other states: the doc does not place the town, so the country must win
# (the nel's prior_gate). 30 countries x 3 templates, gold mentions.
COUNTRIES = ["Norway", "Mexico", "Peru", "Poland", "Lebanon", "Denmark", "Cuba", "China",
             "Belgium", "Brazil", "Sweden", "Jordan", "Canada", "Chile", "Egypt", "Finland",
             "Italy", "Israel", "Japan", "Germany", "Spain", "Armenia", "Holland", "Ireland",
             "Scotland", "Wales", "Russia", "Greece", "Turkey", "India"]
US_CONTEXTS = [("Denver", "Colorado"), ("Seattle", "Washington"), ("Phoenix", "Arizona"),
               ("Atlanta", "Georgia")]
COUNTRY_TEMPLATES = [
    "Officials in {city}, {state} said trade with {country} would grow.",
    "Flights from {city}, {state} to {country} were cancelled on Monday.",
    "The governor of {state} will visit {country} before returning to {city}.",
]
# Goodyear, Arizona has "Egypt" among its alternate names, and Phoenix puts it
# in the doc's region (sibling evidence), so the gate lets it through.
KNOWN_COUNTRY_FAILURES = {"Officials in Phoenix, Arizona said trade with Egypt would grow."}


def test_a_country_is_not_linked_to_a_us_town_of_its_name_in_another_state(geo_nlp):
    nlp, meta = geo_nlp
    docs = []
    for i, country in enumerate(COUNTRIES):
        for k, template in enumerate(COUNTRY_TEMPLATES):
            city, state = US_CONTEXTS[(i + k) % len(US_CONTEXTS)]
            text = template.format(city=city, state=state, country=country)
            if text in KNOWN_COUNTRY_FAILURES:
                continue
            doc = nlp.make_doc(text)
            doc.ents = sorted((doc.char_span(text.index(name), text.index(name) + len(name),
                                             label="LOC") for name in (city, state, country)),
                              key=lambda span: span.start)
            docs.append((doc, country))
    wrong = []
    for (_, country), doc in zip(docs, nlp.pipe([d for d, _ in docs],
                                                disable=["ner", "spotter"])):
        kb_id = next(e.kb_id_ for e in doc.ents if e.text == country)
        record = meta.get(kb_id)
        # Scotland and Wales are first-level divisions of the UK in GeoNames.
        if record is None or record.kind not in ("country", "state") \
                or record.country_code == "US":
            wrong.append((doc.text, record and (record.name, record.admin1)))
    assert len(docs) == 89
    assert not wrong, f"{len(wrong)} of {len(docs)} wrong: {wrong[:5]}"


# Capitals and their countries, end to end: the toponym NER must find both
# (before it read the KB's gazetteer features it missed a third of these
# capitals: "Oslo", "Vilnius"), and the capital must be linked inside the
# country named with it. 40 capitals x 2 templates.
CAPITALS = [("Oslo", "Norway"), ("Helsinki", "Finland"), ("Stockholm", "Sweden"),
            ("Copenhagen", "Denmark"), ("Reykjavik", "Iceland"), ("Lisbon", "Portugal"),
            ("Vienna", "Austria"), ("Warsaw", "Poland"), ("Prague", "Czechia"),
            ("Budapest", "Hungary"), ("Bucharest", "Romania"), ("Sofia", "Bulgaria"),
            ("Athens", "Greece"), ("Ankara", "Turkey"), ("Tehran", "Iran"), ("Baghdad", "Iraq"),
            ("Kabul", "Afghanistan"), ("Nairobi", "Kenya"), ("Lagos", "Nigeria"),
            ("Cairo", "Egypt"), ("Lima", "Peru"), ("Bogota", "Colombia"),
            ("Caracas", "Venezuela"), ("Santiago", "Chile"), ("Canberra", "Australia"),
            ("Wellington", "New Zealand"), ("Hanoi", "Vietnam"), ("Manila", "Philippines"),
            ("Jakarta", "Indonesia"), ("Ottawa", "Canada"), ("Madrid", "Spain"),
            ("Dublin", "Ireland"), ("Brussels", "Belgium"), ("Amsterdam", "Netherlands"),
            ("Berlin", "Germany"), ("Kyiv", "Ukraine"), ("Minsk", "Belarus"),
            ("Riga", "Latvia"), ("Tallinn", "Estonia"), ("Vilnius", "Lithuania")]
# The context model prefers Minsk Region (+4.3 logits) over the city (prior 0.93).
KNOWN_CAPITAL_FAILURES = {"Minsk"}
CAPITAL_TEMPLATES = ["{city} is the capital of {country}.",
                     "Talks were held in {city} on Tuesday, officials in {country} said."]


def test_capitals_and_their_countries_are_found_and_linked(geo_nlp):
    nlp, meta = geo_nlp
    texts, pairs = [], []
    for city, country in CAPITALS:
        for template in CAPITAL_TEMPLATES:
            texts.append(template.format(city=city, country=country))
            pairs.append((city, country))
    wrong = []
    for text, (city, country), doc in zip(texts, pairs, nlp.pipe(texts)):
        linked = {ent.text: meta.get(ent.kb_id_) for ent in doc.ents}
        place, state = linked.get(city), linked.get(country)
        if city in KNOWN_CAPITAL_FAILURES:
            assert state is not None and state.kind == "country", (text, linked)
        elif place is None or state is None or state.kind != "country" \
                or place.kind != "city" or place.country_code != state.country_code:
            wrong.append((text, {name: record and record.name
                                 for name, record in linked.items()}))
    assert len(texts) == 80
    assert not wrong, f"{len(wrong)} of {len(texts)} wrong: {wrong[:5]}"


# A city and its county named apart, anywhere in the sentence (local news:
# "Henry County ... Paris" is Paris, Tennessee): each pair must be linked inside
# the state given, the county too. 30 pairs x 3 templates, written after the
# containment evidence's prior power was chosen on LGL's dev splits; with
# the prior unflattened (power 1) 58 of the 90 were right, now 71.
COUNTY_CITIES = [
    ("Henry County", "Paris", "Tennessee"), ("Lamar County", "Paris", "Texas"),
    ("Bourbon County", "Paris", "Kentucky"), ("Edgar County", "Paris", "Illinois"),
    ("Henderson County", "Athens", "Texas"), ("Limestone County", "Athens", "Alabama"),
    ("McMinn County", "Athens", "Tennessee"), ("Clarke County", "Athens", "Georgia"),
    ("Madison County", "Richmond", "Kentucky"), ("Wayne County", "Richmond", "Indiana"),
    ("Douglas County", "Alexandria", "Minnesota"),
    ("Bartholomew County", "Columbus", "Indiana"),
    ("Lowndes County", "Columbus", "Mississippi"), ("Muscogee County", "Columbus", "Georgia"),
    ("Hall County", "Gainesville", "Georgia"), ("Alachua County", "Gainesville", "Florida"),
    ("Cooke County", "Gainesville", "Texas"), ("Tarrant County", "Arlington", "Texas"),
    ("Richland County", "Mansfield", "Ohio"), ("Erie County", "Sandusky", "Ohio"),
    ("Floyd County", "Rome", "Georgia"), ("Oneida County", "Rome", "New York"),
    ("Montgomery County", "Dayton", "Ohio"), ("Rhea County", "Dayton", "Tennessee"),
    ("Warren County", "Lebanon", "Ohio"), ("Wilson County", "Lebanon", "Tennessee"),
    ("Lebanon County", "Lebanon", "Pennsylvania"), ("Boone County", "Lebanon", "Indiana"),
    ("Dane County", "Madison", "Wisconsin"), ("Oxford County", "Woodstock", "Ontario"),
]
COUNTY_TEMPLATES = ["The {county} commission met in {city} on Tuesday.",
                    "{county} deputies were called to a fire in {city} late Friday.",
                    "Schools in {city} will open two hours late, {county} officials said."]
# Still wrong (observed): Wayne County goes to Michigan's (the largest prior)
# and Richmond to Kentucky (which has a Wayne County too) or NIL; Alexandria,
# VA and Columbus, GA win over the county's town; Sandusky goes to Sandusky
# County (both in Ohio); Lebanon the country wins in two of three sentences
# unless the county is Lebanon County; Oxford County goes to Maine once.
KNOWN_COUNTY_FAILURES = {
    ("Wayne County", "Richmond"): 3, ("Douglas County", "Alexandria"): 3,
    ("Lowndes County", "Columbus"): 3, ("Erie County", "Sandusky"): 3,
    ("Warren County", "Lebanon"): 2, ("Wilson County", "Lebanon"): 2,
    ("Boone County", "Lebanon"): 2, ("Oxford County", "Woodstock"): 1,
}


def _county_city_doc(nlp, template, county, city):
    """The sentence with the county and the city as gold mentions."""
    text = template.format(county=county, city=city)
    at_county = text.index(county)
    at_city = text.index(city)
    if at_city == at_county:  # "Lebanon County ... Lebanon"
        at_city = text.index(city, at_county + len(county))
    doc = nlp.make_doc(text)
    doc.ents = sorted([doc.char_span(at_county, at_county + len(county), label="LOC"),
                       doc.char_span(at_city, at_city + len(city), label="LOC")],
                      key=lambda span: span.start)
    return doc


def test_a_city_is_linked_inside_its_county_named_elsewhere_in_the_sentence(geo_nlp):
    nlp, meta = geo_nlp
    cases = [(county, city, state, _county_city_doc(nlp, template, county, city))
             for county, city, state in COUNTY_CITIES for template in COUNTY_TEMPLATES]
    failures = {}
    for (county, city, state, _), doc in zip(cases, nlp.pipe([c[-1] for c in cases],
                                                             disable=["ner", "spotter"])):
        linked = {ent.text: meta.get(ent.kb_id_) for ent in doc.ents}
        place, region = linked[city], linked[county]
        if place is None or region is None or place.kind != "city" \
                or place.admin1 != state or region.admin1 != state:
            failures[(county, city)] = failures.get((county, city), 0) + 1
    assert len(cases) == 90
    assert failures == KNOWN_COUNTY_FAILURES
