# ruff: noqa: E501  (a table of sentences: one line each reads and diffs best)
"""Every sentence of the report in French and English, keyed once (a test holds both complete).

Placeholders are `str.format` fields; numbers arrive already formatted by report/i18n.py.
The methods note defines each figure exactly as report/figures.py computes it.
"""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "title": {
        "fr": "Baromètre Bluesky des établissements de santé",
        "en": "Bluesky barometer of health establishments",
    },
    "range": {"fr": "du {first} au {last}", "en": "{first} to {last}"},
    "span": {"fr": "du {first} au {last} ({days} jours)", "en": "{first} to {last} ({days} days)"},
    "span_one": {"fr": "le {first} (1 jour)", "en": "{first} (1 day)"},
    "category_only": {"fr": "Catégorie : {category}", "en": "Category: {category}"},
    "generated": {
        "fr": "Rapport produit par bluepulse le {when}.",
        "en": "Report made by bluepulse on {when}.",
    },
    "files": {
        "fr": "Données : barometer.csv (un compte par ligne), top_posts.csv ; graphiques en PNG à côté de ce fichier.",
        "en": "Data: barometer.csv (one account a line), top_posts.csv; charts as PNG files beside this page.",
    },
    # notices
    "no_accounts": {
        "fr": "Aucun compte à présenter : la liste des comptes est vide.",
        "en": "No account to report on: the list of accounts is empty.",
    },
    "no_data": {
        "fr": "La base ne contient aucune donnée sur cette période : les chiffres ci-dessous sont vides, pas nuls.",
        "en": "The store holds no data for this period: the figures below are missing, not zero.",
    },
    "partial": {
        "fr": "La base couvre du {first} au {last} : la période n'est couverte qu'en partie.",
        "en": "The store covers {first} to {last}: the period is only partly covered.",
    },
    "no_followers": {
        "fr": "{count} compte(s) sans nombre d'abonnés connu : pas de taux d'interaction pour eux ({names}).",
        "en": "{count} account(s) without a known follower count: no interaction rate for them ({names}).",
    },
    # key figures
    "key_figures": {"fr": "Chiffres clés de la période", "en": "Key figures of the period"},
    "k_accounts": {"fr": "comptes suivis", "en": "accounts tracked"},
    "k_posts": {"fr": "publications", "en": "posts"},
    "k_interactions": {"fr": "interactions", "en": "interactions"},
    "k_mentions": {"fr": "mentions par le nom (sans tag)", "en": "mentions by name (untagged)"},
    "k_median_rate": {
        "fr": "taux d'interaction médian par publication",
        "en": "median interaction rate per post",
    },
    "k_inactive": {"fr": "comptes inactifs (aucune publication)", "en": "inactive accounts (no post)"},
    "k_near_inactive": {
        "fr": "comptes à une publication par semaine ou moins",
        "en": "accounts at one post a week or less",
    },
    # ranking
    "ranking": {"fr": "Classement par abonnés", "en": "Ranking by followers"},
    "followers_chart": {
        "fr": "Figure 1 — Abonnés en fin de période, les {n} premiers comptes.",
        "en": "Figure 1 — Followers at the end of the period, the first {n} accounts.",
    },
    "axis_followers": {"fr": "Abonnés", "en": "Followers"},
    "axis_account": {"fr": "Compte", "en": "Account"},
    "col_rank": {"fr": "Rang", "en": "Rank"},
    "col_account": {"fr": "Compte", "en": "Account"},
    "col_category": {"fr": "Catégorie", "en": "Category"},
    "col_followers": {"fr": "Abonnés", "en": "Followers"},
    "col_growth": {"fr": "Évolution", "en": "Growth"},
    "col_posts": {"fr": "Publications", "en": "Posts"},
    "col_ppw": {"fr": "Publ./sem.", "en": "Posts/week"},
    "col_interactions": {"fr": "Interactions", "en": "Interactions"},
    "col_rate": {"fr": "Taux/publ.", "en": "Rate/post"},
    "col_mentions": {"fr": "Mentions", "en": "Mentions"},
    "col_likes": {"fr": "J'aime", "en": "Likes"},
    "col_reposts": {"fr": "Republications", "en": "Reposts"},
    "col_replies": {"fr": "Réponses", "en": "Replies"},
    "col_quotes": {"fr": "Citations", "en": "Quotes"},
    "col_accounts": {"fr": "Comptes", "en": "Accounts"},
    "col_ppw_account": {"fr": "Publ./sem. par compte", "en": "Posts/week per account"},
    "col_median_rate": {"fr": "Taux médian/publ.", "en": "Median rate/post"},
    # posts per week
    "weekly": {"fr": "Publications par semaine", "en": "Posts per week"},
    "weekly_chart": {
        "fr": "Figure 2 — Publications de tous les comptes, par semaine de la période (semaines à partir du {first}{partial}).",
        "en": "Figure 2 — Posts of all accounts per week of the period (weeks from {first}{partial}).",
    },
    "weekly_partial": {
        "fr": " ; la dernière ne compte que {days} jours",
        "en": "; the last one has only {days} days",
    },
    "axis_week": {"fr": "Semaine du", "en": "Week of"},
    "axis_posts": {"fr": "Publications", "en": "Posts"},
    "weekly_summary": {
        "fr": "{posts} publications en {weeks} semaines : {ppw} par semaine en moyenne, {ppwa} par compte.",
        "en": "{posts} posts in {weeks} weeks: {ppw} a week on average, {ppwa} per account.",
    },
    # rate
    "rate": {"fr": "Taux d'interaction par publication", "en": "Interaction rate per post"},
    "rate_chart": {
        "fr": "Figure 3 — Taux d'interaction moyen par publication, les {n} premiers comptes.",
        "en": "Figure 3 — Mean interaction rate per post, the first {n} accounts.",
    },
    "axis_rate": {"fr": "Taux d'interaction par publication", "en": "Interaction rate per post"},
    "rate_best": {
        "fr": "Meilleur taux : {name}, {rate} par publication ({posts} publications).",
        "en": "Best rate: {name}, {rate} per post ({posts} posts).",
    },
    "no_rates": {
        "fr": "Aucun taux calculable : il faut des publications et un nombre d'abonnés.",
        "en": "No rate can be computed: it takes posts and a follower count.",
    },
    # top posts
    "top": {"fr": "Meilleures publications", "en": "Top posts"},
    "top_line": {"fr": "{name} · {date}{reply}", "en": "{name} · {date}{reply}"},
    "reply": {"fr": " · réponse", "en": " · reply"},
    "open_post": {"fr": "Voir sur Bluesky", "en": "Open on Bluesky"},
    "no_posts": {"fr": "Aucune publication sur la période.", "en": "No post in the period."},
    "no_text": {"fr": "(sans texte)", "en": "(no text)"},
    # inactive
    "inactive": {"fr": "Comptes inactifs et peu actifs", "en": "Inactive and nearly inactive accounts"},
    "inactive_list": {
        "fr": "Aucune publication sur la période ({count}) :",
        "en": "No post in the period ({count}):",
    },
    "near_list": {
        "fr": "Une publication par semaine ou moins ({count}) :",
        "en": "One post a week or less ({count}):",
    },
    "none_inactive": {"fr": "Aucun.", "en": "No account."},
    # categories
    "categories": {"fr": "Par catégorie", "en": "By category"},
    "categories_chart": {
        "fr": "Figure 4 — Publications par semaine et par compte, selon la catégorie.",
        "en": "Figure 4 — Posts per week per account, by category.",
    },
    "axis_category": {"fr": "Catégorie", "en": "Category"},
    "axis_ppw_account": {"fr": "Publications par semaine et par compte", "en": "Posts per week per account"},
    # methods
    "methods": {"fr": "Méthode", "en": "Methods"},
    "m_source": {
        "fr": "Source : le flux public de Bluesky (firehose) lu en continu par bluepulse, complété par l'API publique (AppView) pour l'historique des abonnés et les publications antérieures au suivi. Période : jours entiers en temps universel (UTC), premier et dernier jour inclus.",
        "en": "Source: Bluesky's public firehose read continuously by bluepulse, completed by the public API (AppView) for follower history and posts made before tracking began. Period: whole days in UTC, first and last day included.",
    },
    "m_posts": {
        "fr": "Publications : les publications propres du compte créées pendant la période, réponses comprises ; les republications (reposts) et les publications supprimées sont exclues.",
        "en": "Posts: the account's own posts created in the period, replies included; reposts and deleted posts are excluded.",
    },
    "m_engagement": {
        "fr": "J'aime, republications, réponses, citations : l'engagement reçu par ces publications, tel que compté au moment du rapport (flux en direct, plus les compteurs de l'AppView pour les publications récupérées). Interactions = j'aime + republications + réponses + citations.",
        "en": "Likes, reposts, replies, quotes: the engagement received by those posts, as counted when the report is made (live firehose, plus the AppView's counts for backfilled posts). Interactions = likes + reposts + replies + quotes.",
    },
    "m_followers": {
        "fr": "Abonnés : le dernier relevé à la fin de la période ou avant (à défaut, le nombre indiqué dans la liste des comptes) ; abonnés en début de période : le dernier relevé au début de la période ou avant ; évolution = différence des deux, vide si l'un manque.",
        "en": "Followers: the latest count recorded at or before the end of the period (failing that, the figure in the accounts list); followers at the start: the latest count at or before the start; growth = the difference, empty when either is missing.",
    },
    "m_ppw": {
        "fr": "Publications par semaine = publications ÷ (jours de la période ÷ 7).",
        "en": "Posts per week = posts ÷ (days in the period ÷ 7).",
    },
    "m_rate": {
        "fr": "Taux d'interaction par publication = moyenne, sur les publications du compte, de ses interactions ÷ abonnés ; vide sans publication ou sans nombre d'abonnés. Le taux médian est la médiane de ces taux sur les comptes qui en ont un.",
        "en": "Interaction rate per post = the mean, over the account's posts, of interactions ÷ followers; empty without posts or without a follower count. The median rate is the median of those rates over the accounts that have one.",
    },
    "m_mentions": {
        "fr": "Mentions par le nom : publications de n'importe quel compte qui nomment l'établissement (termes surveillés, sans accents ni casse, mots entiers, hashtags compris) sans le tagger ; une publication qui le tague compte comme mention, pas ici.",
        "en": "Mentions by name: posts by anyone naming the establishment (watch terms, accent- and case-insensitive, whole words, hashtags included) without tagging it; a post that tags it counts as a mention, not here.",
    },
    "m_inactive": {
        "fr": "Inactif : aucune publication sur la période ; peu actif : une publication par semaine ou moins.",
        "en": "Inactive: no post in the period; nearly inactive: at most one post a week.",
    },
    "m_top": {
        "fr": "Meilleures publications : classées par interactions ; taux = interactions ÷ abonnés du compte.",
        "en": "Top posts: ranked by interactions; rate = interactions ÷ the account's followers.",
    },
    "unknown": {"fr": "inconnu", "en": "unknown"},
}
