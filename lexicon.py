"""The miniature world's words and sentence templates, in en de zh ar el hi tr vi (data only).

world.py reads these tables; nothing here runs. Every table row is a tuple in LANG order
(en, de, zh, ar, el, hi, tr, vi). Conventions, all resolved by world.render():

- A word with alternatives "a|b" or "a|b|c" agrees in gender with its controller (m=0, f=1,
  n=2; a missing neuter falls back to the first form): occupations agree with the person,
  counted numbers with the counted noun (Arabic gender polarity, Greek τρεις/τρία).
- A noun is "singular/counted/gender": the counted form is what follows a number in the
  'has' sentence (German plural, Chinese classifier+noun, Vietnamese classifier+noun,
  Turkish singular+possessive suffix, Greek accusative plural).
- Templates: {P} {Q} are people, {P.gen} {P.dat} Turkish genitive/dative forms (vowel harmony,
  computed in world.py), {P:a|b} picks by P's gender, {noun:a|b|c} by the noun's gender;
  other {slot}s are the relation's values. The answer slot of each relation is ANSWER_SLOT.
Grammar is simplified on purpose (one fixed word order per language; constructions such as
"in the city X" avoid case endings), but every rendering is exact and consistent.
"""

LANG_ORDER = ("en", "de", "zh", "ar", "el", "hi", "tr", "vi")

# Names are built from CV syllables; each script transliterates consonant and vowel.
CONSONANTS = {  # latin -> (greek, devanagari, arabic)
    "k": ("κ", "क", "ك"), "m": ("μ", "म", "م"), "n": ("ν", "न", "ن"), "r": ("ρ", "र", "ر"),
    "s": ("σ", "स", "س"), "t": ("τ", "त", "ت"), "l": ("λ", "ल", "ل"), "d": ("ντ", "द", "د"),
    "b": ("μπ", "ब", "ب"),
}
VOWELS = {  # latin -> (greek, greek accented, devanagari sign, arabic)
    "a": ("α", "ά", "ा", "ا"), "e": ("ε", "έ", "े", "ي"), "i": ("ι", "ί", "ि", "ي"),
    "o": ("ο", "ό", "ो", "و"), "u": ("ου", "ού", "ु", "و"),
}
ZH_SYLLABLES = {  # one transliteration character per syllable
    "ka": "卡", "ke": "克", "ki": "基", "ko": "科", "ku": "库", "ma": "马", "me": "梅", "mi": "米",
    "mo": "莫", "mu": "穆", "na": "娜", "ne": "内", "ni": "尼", "no": "诺", "nu": "努", "ra": "拉",
    "re": "雷", "ri": "里", "ro": "罗", "ru": "鲁", "sa": "萨", "se": "塞", "si": "西", "so": "索",
    "su": "苏", "ta": "塔", "te": "特", "ti": "蒂", "to": "托", "tu": "图", "la": "兰", "le": "勒",
    "li": "利", "lo": "洛", "lu": "卢", "da": "达", "de": "德", "di": "迪", "do": "多", "du": "杜",
    "ba": "巴", "be": "贝", "bi": "比", "bo": "波", "bu": "布",
}

CITIES = [
    ("Paris", "Paris", "巴黎", "باريس", "Παρίσι", "पेरिस", "Paris", "Paris"),
    ("London", "London", "伦敦", "لندن", "Λονδίνο", "लंदन", "Londra", "Luân Đôn"),
    ("Berlin", "Berlin", "柏林", "برلين", "Βερολίνο", "बर्लिन", "Berlin", "Berlin"),
    ("Rome", "Rom", "罗马", "روما", "Ρώμη", "रोम", "Roma", "Rôma"),
    ("Madrid", "Madrid", "马德里", "مدريد", "Μαδρίτη", "मैड्रिड", "Madrid", "Madrid"),
    ("Cairo", "Kairo", "开罗", "القاهرة", "Κάιρο", "काहिरा", "Kahire", "Cairo"),
    ("Tokyo", "Tokio", "东京", "طوكيو", "Τόκιο", "टोक्यो", "Tokyo", "Tokyo"),
    ("Beijing", "Peking", "北京", "بكين", "Πεκίνο", "बीजिंग", "Pekin", "Bắc Kinh"),
    ("Delhi", "Delhi", "德里", "دلهي", "Δελχί", "दिल्ली", "Delhi", "Delhi"),
    ("Athens", "Athen", "雅典", "أثينا", "Αθήνα", "एथेंस", "Atina", "Athena"),
    ("Istanbul", "Istanbul", "伊斯坦布尔", "إسطنبول", "Κωνσταντινούπολη", "इस्तांबुल", "İstanbul", "Istanbul"),
    ("Hanoi", "Hanoi", "河内", "هانوي", "Ανόι", "हनोई", "Hanoi", "Hà Nội"),
    ("Moscow", "Moskau", "莫斯科", "موسكو", "Μόσχα", "मॉस्को", "Moskova", "Moskva"),
    ("Vienna", "Wien", "维也纳", "فيينا", "Βιέννη", "वियना", "Viyana", "Viên"),
    ("Lisbon", "Lissabon", "里斯本", "لشبونة", "Λισαβόνα", "लिस्बन", "Lizbon", "Lisboa"),
    ("Seoul", "Seoul", "首尔", "سيول", "Σεούλ", "सियोल", "Seul", "Seoul"),
    ("Sydney", "Sydney", "悉尼", "سيدني", "Σίδνεϊ", "सिडनी", "Sidney", "Sydney"),
    ("Toronto", "Toronto", "多伦多", "تورونتو", "Τορόντο", "टोरंटो", "Toronto", "Toronto"),
    ("Mumbai", "Mumbai", "孟买", "مومباي", "Μουμπάι", "मुंबई", "Mumbai", "Mumbai"),
    ("Baghdad", "Bagdad", "巴格达", "بغداد", "Βαγδάτη", "बगदाद", "Bağdat", "Baghdad"),
    ("Prague", "Prag", "布拉格", "براغ", "Πράγα", "प्राग", "Prag", "Praha"),
    ("Venice", "Venedig", "威尼斯", "البندقية", "Βενετία", "वेनिस", "Venedik", "Venezia"),
    ("Warsaw", "Warschau", "华沙", "وارسو", "Βαρσοβία", "वारसॉ", "Varşova", "Warszawa"),
    ("Stockholm", "Stockholm", "斯德哥尔摩", "ستوكهولم", "Στοκχόλμη", "स्टॉकहोम", "Stockholm", "Stockholm"),
]

JOBS = [  # all English forms start with a consonant ("is a ...")
    ("doctor", "Arzt|Ärztin", "医生", "طبيب|طبيبة", "γιατρός", "डॉक्टर", "doktor", "bác sĩ"),
    ("teacher", "Lehrer|Lehrerin", "老师", "معلم|معلمة", "δάσκαλος|δασκάλα", "शिक्षक|शिक्षिका", "öğretmen", "giáo viên"),
    ("farmer", "Bauer|Bäuerin", "农民", "مزارع|مزارعة", "αγρότης|αγρότισσα", "किसान", "çiftçi", "nông dân"),
    ("baker", "Bäcker|Bäckerin", "面包师", "خباز|خبازة", "φούρναρης|φούρναρισσα", "बेकर", "fırıncı", "thợ làm bánh"),
    ("pilot", "Pilot|Pilotin", "飞行员", "طيار|طيارة", "πιλότος", "पायलट", "pilot", "phi công"),
    ("nurse", "Pfleger|Pflegerin", "护士", "ممرض|ممرضة", "νοσηλευτής|νοσηλεύτρια", "नर्स", "hemşire", "y tá"),
    ("lawyer", "Anwalt|Anwältin", "律师", "محام|محامية", "δικηγόρος", "वकील", "avukat", "luật sư"),
    ("singer", "Sänger|Sängerin", "歌手", "مغن|مغنية", "τραγουδιστής|τραγουδίστρια", "गायक|गायिका", "şarkıcı", "ca sĩ"),
    ("painter", "Maler|Malerin", "画家", "رسام|رسامة", "ζωγράφος", "चित्रकार", "ressam", "họa sĩ"),
    ("driver", "Fahrer|Fahrerin", "司机", "سائق|سائقة", "οδηγός", "ड्राइवर", "şoför", "tài xế"),
    ("cook", "Koch|Köchin", "厨师", "طباخ|طباخة", "μάγειρας|μαγείρισσα", "रसोइया", "aşçı", "đầu bếp"),
    ("writer", "Schriftsteller|Schriftstellerin", "作家", "كاتب|كاتبة", "συγγραφέας", "लेखक|लेखिका", "yazar", "nhà văn"),
    ("dancer", "Tänzer|Tänzerin", "舞蹈家", "راقص|راقصة", "χορευτής|χορεύτρια", "नर्तक|नर्तकी", "dansçı", "vũ công"),
    ("tailor", "Schneider|Schneiderin", "裁缝", "خياط|خياطة", "ράφτης|ράφτρα", "दर्जी", "terzi", "thợ may"),
    ("police officer", "Polizist|Polizistin", "警察", "شرطي|شرطية", "αστυνομικός", "पुलिसकर्मी", "polis", "cảnh sát"),
    ("fisher", "Fischer|Fischerin", "渔民", "صياد|صيادة", "ψαράς|ψαρού", "मछुआरा|मछुआरिन", "balıkçı", "ngư dân"),
    ("student", "Student|Studentin", "学生", "طالب|طالبة", "φοιτητής|φοιτήτρια", "छात्र|छात्रा", "öğrenci", "sinh viên"),
]

NOUNS = [  # "singular/counted/gender" (gender only where agreement needs it: ar el hi)
    ("cat/cats", "Katze/Katzen", "猫/只猫", "قطة/قطط/f", "γάτα/γάτες/f", "बिल्ली/बिल्लियाँ/f", "kedi/kedisi", "mèo/con mèo"),
    ("dog/dogs", "Hund/Hunde", "狗/只狗", "كلب/كلاب/m", "σκύλος/σκύλους/m", "कुत्ता/कुत्ते/m", "köpek/köpeği", "chó/con chó"),
    ("horse/horses", "Pferd/Pferde", "马/匹马", "حصان/أحصنة/m", "άλογο/άλογα/n", "घोड़ा/घोड़े/m", "at/atı", "ngựa/con ngựa"),
    ("bird/birds", "Vogel/Vögel", "鸟/只鸟", "طائر/طيور/m", "πουλί/πουλιά/n", "चिड़िया/चिड़ियाँ/f", "kuş/kuşu", "chim/con chim"),
    ("fish/fish", "Fisch/Fische", "鱼/条鱼", "سمكة/سمكات/f", "ψάρι/ψάρια/n", "मछली/मछलियाँ/f", "balık/balığı", "cá/con cá"),
    ("cow/cows", "Kuh/Kühe", "牛/头牛", "بقرة/بقرات/f", "αγελάδα/αγελάδες/f", "गाय/गायें/f", "inek/ineği", "bò/con bò"),
    ("sheep/sheep", "Schaf/Schafe", "羊/只羊", "خروف/خراف/m", "πρόβατο/πρόβατα/n", "भेड़/भेड़ें/f", "koyun/koyunu", "cừu/con cừu"),
    ("rabbit/rabbits", "Kaninchen/Kaninchen", "兔子/只兔子", "أرنب/أرانب/m", "κουνέλι/κουνέλια/n", "खरगोश/खरगोश/m", "tavşan/tavşanı", "thỏ/con thỏ"),
    ("goat/goats", "Ziege/Ziegen", "山羊/只山羊", "عنزة/عنزات/f", "κατσίκα/κατσίκες/f", "बकरी/बकरियाँ/f", "keçi/keçisi", "dê/con dê"),
    ("duck/ducks", "Ente/Enten", "鸭子/只鸭子", "بطة/بطات/f", "πάπια/πάπιες/f", "बत्तख/बत्तखें/f", "ördek/ördeği", "vịt/con vịt"),
    ("book/books", "Buch/Bücher", "书/本书", "كتاب/كتب/m", "βιβλίο/βιβλία/n", "किताब/किताबें/f", "kitap/kitabı", "sách/cuốn sách"),
    ("pen/pens", "Stift/Stifte", "笔/支笔", "قلم/أقلام/m", "στυλό/στυλό/n", "कलम/कलमें/f", "kalem/kalemi", "bút/cây bút"),
    ("chair/chairs", "Stuhl/Stühle", "椅子/把椅子", "كرسي/كراسي/m", "καρέκλα/καρέκλες/f", "कुर्सी/कुर्सियाँ/f", "sandalye/sandalyesi", "ghế/cái ghế"),
    ("box/boxes", "Kiste/Kisten", "箱子/个箱子", "صندوق/صناديق/m", "κουτί/κουτιά/n", "डिब्बा/डिब्बे/m", "kutu/kutusu", "hộp/cái hộp"),
    ("car/cars", "Auto/Autos", "汽车/辆汽车", "سيارة/سيارات/f", "αυτοκίνητο/αυτοκίνητα/n", "गाड़ी/गाड़ियाँ/f", "araba/arabası", "ô tô/chiếc ô tô"),
    ("bicycle/bicycles", "Fahrrad/Fahrräder", "自行车/辆自行车", "دراجة/دراجات/f", "ποδήλατο/ποδήλατα/n", "साइकिल/साइकिलें/f", "bisiklet/bisikleti", "xe đạp/chiếc xe đạp"),
    ("lamp/lamps", "Lampe/Lampen", "灯/盏灯", "مصباح/مصابيح/m", "λάμπα/λάμπες/f", "दीपक/दीपक/m", "lamba/lambası", "đèn/cái đèn"),
    ("cup/cups", "Tasse/Tassen", "杯子/个杯子", "كوب/أكواب/m", "φλιτζάνι/φλιτζάνια/n", "प्याला/प्याले/m", "fincan/fincanı", "cốc/cái cốc"),
    ("key/keys", "Schlüssel/Schlüssel", "钥匙/把钥匙", "مفتاح/مفاتيح/m", "κλειδί/κλειδιά/n", "चाबी/चाबियाँ/f", "anahtar/anahtarı", "chìa khóa/chiếc chìa khóa"),
    ("table/tables", "Tisch/Tische", "桌子/张桌子", "طاولة/طاولات/f", "τραπέζι/τραπέζια/n", "मेज़/मेज़ें/f", "masa/masası", "bàn/cái bàn"),
]

COUNTS = [  # 3..9 before a counted noun (Arabic: form with a masculine | feminine noun)
    ("three", "drei", "三", "ثلاثة|ثلاث", "τρεις|τρεις|τρία", "तीन", "üç", "ba"),
    ("four", "vier", "四", "أربعة|أربع", "τέσσερις|τέσσερις|τέσσερα", "चार", "dört", "bốn"),
    ("five", "fünf", "五", "خمسة|خمس", "πέντε", "पाँच", "beş", "năm"),
    ("six", "sechs", "六", "ستة|ست", "έξι", "छह", "altı", "sáu"),
    ("seven", "sieben", "七", "سبعة|سبع", "επτά", "सात", "yedi", "bảy"),
    ("eight", "acht", "八", "ثمانية|ثماني", "οκτώ", "आठ", "sekiz", "tám"),
    ("nine", "neun", "九", "تسعة|تسع", "εννέα", "नौ", "dokuz", "chín"),
]
COUNT_MIN = 3  # COUNTS[0] is three

NUMBERS = [  # 1..12 standing alone (answers to counting and arithmetic)
    ("one", "eins", "一", "واحد", "ένα", "एक", "bir", "một"),
    ("two", "zwei", "二", "اثنان", "δύο", "दो", "iki", "hai"),
    ("three", "drei", "三", "ثلاثة", "τρία", "तीन", "üç", "ba"),
    ("four", "vier", "四", "أربعة", "τέσσερα", "चार", "dört", "bốn"),
    ("five", "fünf", "五", "خمسة", "πέντε", "पाँच", "beş", "năm"),
    ("six", "sechs", "六", "ستة", "έξι", "छह", "altı", "sáu"),
    ("seven", "sieben", "七", "سبعة", "επτά", "सात", "yedi", "bảy"),
    ("eight", "acht", "八", "ثمانية", "οκτώ", "आठ", "sekiz", "tám"),
    ("nine", "neun", "九", "تسعة", "εννέα", "नौ", "dokuz", "chín"),
    ("ten", "zehn", "十", "عشرة", "δέκα", "दस", "on", "mười"),
    ("eleven", "elf", "十一", "أحد عشر", "έντεκα", "ग्यारह", "on bir", "mười một"),
    ("twelve", "zwölf", "十二", "اثنا عشر", "δώδεκα", "बारह", "on iki", "mười hai"),
]

COLORS = [
    ("red", "Rot", "红色", "الأحمر", "κόκκινο", "लाल", "kırmızı", "đỏ"),
    ("blue", "Blau", "蓝色", "الأزرق", "μπλε", "नीला", "mavi", "xanh dương"),
    ("green", "Grün", "绿色", "الأخضر", "πράσινο", "हरा", "yeşil", "xanh lá"),
    ("yellow", "Gelb", "黄色", "الأصفر", "κίτρινο", "पीला", "sarı", "vàng"),
    ("black", "Schwarz", "黑色", "الأسود", "μαύρο", "काला", "siyah", "đen"),
    ("white", "Weiß", "白色", "الأبيض", "άσπρο", "सफ़ेद", "beyaz", "trắng"),
    ("orange", "Orange", "橙色", "البرتقالي", "πορτοκαλί", "नारंगी", "turuncu", "cam"),
    ("purple", "Lila", "紫色", "البنفسجي", "μωβ", "बैंगनी", "mor", "tím"),
    ("brown", "Braun", "棕色", "البني", "καφέ", "भूरा", "kahverengi", "nâu"),
    ("gray", "Grau", "灰色", "الرمادي", "γκρι", "स्लेटी", "gri", "xám"),
]

FOODS = [
    ("apples", "Äpfel", "苹果", "التفاح", "μήλα", "सेब", "elma", "táo"),
    ("bread", "Brot", "面包", "الخبز", "ψωμί", "रोटी", "ekmek", "bánh mì"),
    ("rice", "Reis", "米饭", "الأرز", "ρύζι", "चावल", "pilav", "cơm"),
    ("cheese", "Käse", "奶酪", "الجبن", "τυρί", "पनीर", "peynir", "phô mai"),
    ("soup", "Suppe", "汤", "الحساء", "σούπα", "सूप", "çorba", "súp"),
    ("eggs", "Eier", "鸡蛋", "البيض", "αυγά", "अंडे", "yumurta", "trứng"),
    ("bananas", "Bananen", "香蕉", "الموز", "μπανάνες", "केले", "muz", "chuối"),
    ("pasta", "Nudeln", "意大利面", "المعكرونة", "ζυμαρικά", "पास्ता", "makarna", "mì Ý"),
    ("potatoes", "Kartoffeln", "土豆", "البطاطس", "πατάτες", "आलू", "patates", "khoai tây"),
    ("carrots", "Karotten", "胡萝卜", "الجزر", "καρότα", "गाजर", "havuç", "cà rốt"),
    ("grapes", "Trauben", "葡萄", "العنب", "σταφύλια", "अंगूर", "üzüm", "nho"),
    ("honey", "Honig", "蜂蜜", "العسل", "μέλι", "शहद", "bal", "mật ong"),
    ("tomatoes", "Tomaten", "西红柿", "الطماطم", "ντομάτες", "टमाटर", "domates", "cà chua"),
]

LANGUAGES = [  # languages people speak (Arabic follows "اللغة")
    ("English", "Englisch", "英语", "الإنجليزية", "αγγλικά", "अंग्रेज़ी", "İngilizce", "tiếng Anh"),
    ("German", "Deutsch", "德语", "الألمانية", "γερμανικά", "जर्मन", "Almanca", "tiếng Đức"),
    ("Chinese", "Chinesisch", "汉语", "الصينية", "κινέζικα", "चीनी", "Çince", "tiếng Trung"),
    ("Arabic", "Arabisch", "阿拉伯语", "العربية", "αραβικά", "अरबी", "Arapça", "tiếng Ả Rập"),
    ("Greek", "Griechisch", "希腊语", "اليونانية", "ελληνικά", "यूनानी", "Yunanca", "tiếng Hy Lạp"),
    ("Hindi", "Hindi", "印地语", "الهندية", "χίντι", "हिंदी", "Hintçe", "tiếng Hindi"),
    ("Turkish", "Türkisch", "土耳其语", "التركية", "τουρκικά", "तुर्की", "Türkçe", "tiếng Thổ Nhĩ Kỳ"),
    ("Vietnamese", "Vietnamesisch", "越南语", "الفيتنامية", "βιετναμέζικα", "वियतनामी", "Vietnamca", "tiếng Việt"),
    ("French", "Französisch", "法语", "الفرنسية", "γαλλικά", "फ़्रेंच", "Fransızca", "tiếng Pháp"),
    ("Spanish", "Spanisch", "西班牙语", "الإسبانية", "ισπανικά", "स्पेनिश", "İspanyolca", "tiếng Tây Ban Nha"),
    ("Japanese", "Japanisch", "日语", "اليابانية", "ιαπωνικά", "जापानी", "Japonca", "tiếng Nhật"),
    ("Russian", "Russisch", "俄语", "الروسية", "ρωσικά", "रूसी", "Rusça", "tiếng Nga"),
]

MONTHS = [  # Greek in the accusative ("τον Μάρτιο")
    ("January", "Januar", "一月", "يناير", "Ιανουάριο", "जनवरी", "Ocak", "tháng một"),
    ("February", "Februar", "二月", "فبراير", "Φεβρουάριο", "फ़रवरी", "Şubat", "tháng hai"),
    ("March", "März", "三月", "مارس", "Μάρτιο", "मार्च", "Mart", "tháng ba"),
    ("April", "April", "四月", "أبريل", "Απρίλιο", "अप्रैल", "Nisan", "tháng tư"),
    ("May", "Mai", "五月", "مايو", "Μάιο", "मई", "Mayıs", "tháng năm"),
    ("June", "Juni", "六月", "يونيو", "Ιούνιο", "जून", "Haziran", "tháng sáu"),
    ("July", "Juli", "七月", "يوليو", "Ιούλιο", "जुलाई", "Temmuz", "tháng bảy"),
    ("August", "August", "八月", "أغسطس", "Αύγουστο", "अगस्त", "Ağustos", "tháng tám"),
    ("September", "September", "九月", "سبتمبر", "Σεπτέμβριο", "सितंबर", "Eylül", "tháng chín"),
    ("October", "Oktober", "十月", "أكتوبر", "Οκτώβριο", "अक्टूबर", "Ekim", "tháng mười"),
    ("November", "November", "十一月", "نوفمبر", "Νοέμβριο", "नवंबर", "Kasım", "tháng mười một"),
    ("December", "Dezember", "十二月", "ديسمبر", "Δεκέμβριο", "दिसंबर", "Aralık", "tháng mười hai"),
]

# ------------------------------------------------------------------------------ facts
RELATIONS = ("from", "lives", "job", "age", "has", "color", "food", "speaks", "teacher", "month")
ANSWER_SLOT = {"from": "city", "lives": "city", "job": "job", "age": "age", "has": "num",
               "color": "color", "food": "food", "speaks": "lang", "teacher": "Q", "month": "month"}

FACTS = {
    "en": {"from": "{P} comes from {city}.", "lives": "{P} lives in {city}.", "job": "{P} is a {job}.",
           "age": "{P} is {age} years old.", "has": "{P} has {num} {noun_pl}.",
           "color": "The favorite color of {P} is {color}.", "food": "{P} often eats {food}.",
           "speaks": "{P} speaks {lang}.", "teacher": "{Q} teaches {P}.", "month": "{P} was born in {month}."},
    "de": {"from": "{P} kommt aus {city}.", "lives": "{P} wohnt in {city}.", "job": "{P} arbeitet als {job}.",
           "age": "{P} ist {age} Jahre alt.", "has": "{P} hat {num} {noun_pl}.",
           "color": "Die Lieblingsfarbe von {P} ist {color}.", "food": "{P} isst oft {food}.",
           "speaks": "{P} spricht {lang}.", "teacher": "{Q} unterrichtet {P}.",
           "month": "{P} wurde im {month} geboren."},
    "zh": {"from": "{P}来自{city}。", "lives": "{P}住在{city}。", "job": "{P}是一名{job}。",
           "age": "{P}今年{age}岁。", "has": "{P}有{num}{noun_pl}。", "color": "{P}最喜欢的颜色是{color}。",
           "food": "{P}经常吃{food}。", "speaks": "{P}会说{lang}。", "teacher": "{Q}教{P}。",
           "month": "{P}出生于{month}。"},
    "ar": {"from": "{P} من مدينة {city}.", "lives": "{P} {P:يعيش|تعيش} في مدينة {city}.", "job": "{P} {job}.",
           "age": "عمر {P} {age} سنة.", "has": "عند {P} {num} {noun_pl}.",
           "color": "اللون المفضل عند {P} هو {color}.", "food": "{P} {P:يأكل|تأكل} {food} كثيرًا.",
           "speaks": "{P} {P:يتحدث|تتحدث} اللغة {lang}.", "teacher": "{Q} {Q:يدرّس|تدرّس} {P}.",
           "month": "{P} {P:وُلد|وُلدت} في شهر {month}."},
    "el": {"from": "{P:Ο|Η} {P} κατάγεται από την πόλη {city}.", "lives": "{P:Ο|Η} {P} μένει στην πόλη {city}.",
           "job": "{P:Ο|Η} {P} είναι {job}.", "age": "{P:Ο|Η} {P} είναι {age} χρονών.",
           "has": "{P:Ο|Η} {P} έχει {num} {noun_pl}.",
           "color": "Το αγαπημένο χρώμα {P:του|της} {P} είναι το {color}.",
           "food": "{P:Ο|Η} {P} τρώει συχνά {food}.", "speaks": "{P:Ο|Η} {P} μιλάει {lang}.",
           "teacher": "{Q:Ο|Η} {Q} διδάσκει {P:τον|την} {P}.", "month": "{P:Ο|Η} {P} γεννήθηκε τον {month}."},
    "hi": {"from": "{P} मूल रूप से {city} {P:का|की} है।", "lives": "{P} {city} में {P:रहता|रहती} है।",
           "job": "{P} पेशे से {job} है।", "age": "{P} {age} साल {P:का|की} है।",
           "has": "{P} के पास {num} {noun_pl} हैं।", "color": "{P} का पसंदीदा रंग {color} है।",
           "food": "{P} अक्सर {food} {P:खाता|खाती} है।", "speaks": "{P} {lang} {P:बोलता|बोलती} है।",
           "teacher": "{Q} {P} को {Q:पढ़ाता|पढ़ाती} है।", "month": "{P} का जन्म {month} में हुआ था।"},
    "tr": {"from": "{P} {city} şehrinden geliyor.", "lives": "{P} {city} şehrinde yaşıyor.",
           "job": "{P} {job} olarak çalışıyor.", "age": "{P} {age} yaşında.",
           "has": "{P.gen} {num} {noun_pl} var.", "color": "{P.gen} en sevdiği renk {color}.",
           "food": "{P} sık sık {food} yiyor.", "speaks": "{P} {lang} konuşuyor.",
           "teacher": "{Q}, {P.dat} ders veriyor.", "month": "{P} {month} ayında doğdu."},
    "vi": {"from": "{P} đến từ {city}.", "lives": "{P} sống ở {city}.", "job": "{P} là {job}.",
           "age": "{P} {age} tuổi.", "has": "{P} có {num} {noun_pl}.",
           "color": "Màu yêu thích của {P} là màu {color}.", "food": "{P} thường ăn {food}.",
           "speaks": "{P} nói {lang}.", "teacher": "{Q} dạy {P}.", "month": "{P} sinh vào {month}."},
}

QUESTIONS = {
    "en": {"from": "Where does {P} come from?", "lives": "Where does {P} live?", "job": "What is the job of {P}?",
           "age": "How old is {P}?", "has": "How many {noun_pl} does {P} have?",
           "color": "What is the favorite color of {P}?", "food": "What does {P} often eat?",
           "speaks": "Which language does {P} speak?", "teacher": "Who teaches {P}?",
           "month": "In which month was {P} born?"},
    "de": {"from": "Woher kommt {P}?", "lives": "Wo wohnt {P}?", "job": "Als was arbeitet {P}?",
           "age": "Wie alt ist {P}?", "has": "Wie viele {noun_pl} hat {P}?",
           "color": "Was ist die Lieblingsfarbe von {P}?", "food": "Was isst {P} oft?",
           "speaks": "Welche Sprache spricht {P}?", "teacher": "Wer unterrichtet {P}?",
           "month": "In welchem Monat wurde {P} geboren?"},
    "zh": {"from": "{P}来自哪里？", "lives": "{P}住在哪里？", "job": "{P}的职业是什么？", "age": "{P}今年多少岁？",
           "has": "{P}有几{noun_pl}？", "color": "{P}最喜欢的颜色是什么？", "food": "{P}经常吃什么？",
           "speaks": "{P}会说什么语言？", "teacher": "谁教{P}？", "month": "{P}出生于几月？"},
    "ar": {"from": "من أي مدينة {P}؟", "lives": "في أي مدينة {P:يعيش|تعيش} {P}؟", "job": "ما هي مهنة {P}؟",
           "age": "كم عمر {P}؟", "has": "كم {noun} عند {P}؟", "color": "ما هو اللون المفضل عند {P}؟",
           "food": "ماذا {P:يأكل|تأكل} {P} كثيرًا؟", "speaks": "ما اللغة التي {P:يتحدثها|تتحدثها} {P}؟",
           "teacher": "من يدرّس {P}؟", "month": "في أي شهر {P:وُلد|وُلدت} {P}؟"},
    "el": {"from": "Από ποια πόλη κατάγεται {P:ο|η} {P};", "lives": "Σε ποια πόλη μένει {P:ο|η} {P};",
           "job": "Τι επάγγελμα έχει {P:ο|η} {P};", "age": "Πόσων χρονών είναι {P:ο|η} {P};",
           "has": "{noun:Πόσους|Πόσες|Πόσα} {noun_pl} έχει {P:ο|η} {P};",
           "color": "Ποιο είναι το αγαπημένο χρώμα {P:του|της} {P};", "food": "Τι τρώει συχνά {P:ο|η} {P};",
           "speaks": "Ποια γλώσσα μιλάει {P:ο|η} {P};", "teacher": "Ποιος διδάσκει {P:τον|την} {P};",
           "month": "Ποιον μήνα γεννήθηκε {P:ο|η} {P};"},
    "hi": {"from": "{P} मूल रूप से कहाँ {P:का|की} है?", "lives": "{P} कहाँ {P:रहता|रहती} है?",
           "job": "{P} पेशे से क्या है?", "age": "{P} कितने साल {P:का|की} है?",
           "has": "{P} के पास {noun:कितने|कितनी} {noun_pl} हैं?", "color": "{P} का पसंदीदा रंग क्या है?",
           "food": "{P} अक्सर क्या {P:खाता|खाती} है?", "speaks": "{P} कौन सी भाषा {P:बोलता|बोलती} है?",
           "teacher": "{P} को कौन पढ़ाता है?", "month": "{P} का जन्म किस महीने में हुआ था?"},
    "tr": {"from": "{P} hangi şehirden geliyor?", "lives": "{P} hangi şehirde yaşıyor?",
           "job": "{P} ne olarak çalışıyor?", "age": "{P} kaç yaşında?", "has": "{P.gen} kaç {noun_pl} var?",
           "color": "{P.gen} en sevdiği renk ne?", "food": "{P} sık sık ne yiyor?",
           "speaks": "{P} hangi dili konuşuyor?", "teacher": "{P.dat} kim ders veriyor?",
           "month": "{P} hangi ayda doğdu?"},
    "vi": {"from": "{P} đến từ đâu?", "lives": "{P} sống ở đâu?", "job": "{P} làm nghề gì?",
           "age": "{P} bao nhiêu tuổi?", "has": "{P} có mấy {noun_pl}?",
           "color": "Màu yêu thích của {P} là màu gì?", "food": "{P} thường ăn gì?",
           "speaks": "{P} nói tiếng gì?", "teacher": "Ai dạy {P}?", "month": "{P} sinh vào tháng nào?"},
}

# ------------------------------------------------------------------ instruction data
SENTENCE_JOIN = {"zh": ""}   # how sentences join into a passage (default " ")
LIST_SEP = {"zh": "、", "ar": "، "}  # between listed items (default ", ")
YES_NO = {"en": ("Yes", "No"), "de": ("Ja", "Nein"), "zh": ("是", "否"), "ar": ("نعم", "لا"),
          "el": ("Ναι", "Όχι"), "hi": ("हाँ", "नहीं"), "tr": ("Evet", "Hayır"), "vi": ("Có", "Không")}

# Field labels of a person's record: "name" and one per relation shown in records.
FIELDS = {
    "en": {"name": "name", "from": "hometown", "lives": "city", "job": "job", "age": "age",
           "color": "favorite color", "food": "food", "speaks": "language", "teacher": "teacher",
           "month": "birth month"},
    "de": {"name": "Name", "from": "Herkunft", "lives": "Wohnort", "job": "Beruf", "age": "Alter",
           "color": "Lieblingsfarbe", "food": "Essen", "speaks": "Sprache", "teacher": "Lehrkraft",
           "month": "Geburtsmonat"},
    "zh": {"name": "姓名", "from": "家乡", "lives": "居住地", "job": "职业", "age": "年龄",
           "color": "最喜欢的颜色", "food": "食物", "speaks": "语言", "teacher": "老师", "month": "出生月份"},
    "ar": {"name": "الاسم", "from": "المدينة الأصلية", "lives": "مكان الإقامة", "job": "المهنة", "age": "العمر",
           "color": "اللون المفضل", "food": "الطعام", "speaks": "اللغة", "teacher": "المعلم",
           "month": "شهر الميلاد"},
    "el": {"name": "Όνομα", "from": "Καταγωγή", "lives": "Κατοικία", "job": "Επάγγελμα", "age": "Ηλικία",
           "color": "Αγαπημένο χρώμα", "food": "Φαγητό", "speaks": "Γλώσσα", "teacher": "Δάσκαλος",
           "month": "Μήνας γέννησης"},
    "hi": {"name": "नाम", "from": "मूल शहर", "lives": "निवास", "job": "पेशा", "age": "उम्र",
           "color": "पसंदीदा रंग", "food": "भोजन", "speaks": "भाषा", "teacher": "शिक्षक",
           "month": "जन्म का महीना"},
    "tr": {"name": "Ad", "from": "Memleket", "lives": "İkamet", "job": "Meslek", "age": "Yaş",
           "color": "En sevdiği renk", "food": "Yemek", "speaks": "Dil", "teacher": "Öğretmen",
           "month": "Doğum ayı"},
    "vi": {"name": "Tên", "from": "Quê quán", "lives": "Nơi ở", "job": "Nghề nghiệp", "age": "Tuổi",
           "color": "Màu yêu thích", "food": "Món ăn", "speaks": "Ngôn ngữ", "teacher": "Giáo viên",
           "month": "Tháng sinh"},
}

# Instructions of the non-QA task types; "label_*" name the parts of the input.
TASKS = {
    "en": {"yesno": "Is the statement true according to the text? Answer yes or no.",
           "count": "How many people are mentioned in the text?",
           "list_people": "List the people mentioned in the text in order of appearance.",
           "list_cities": "List the cities mentioned in the text in order of appearance.",
           "describe": "Write one sentence that states the information in the record.",
           "arith": "What is {a} plus {b}?", "label_text": "Text", "label_statement": "Statement"},
    "de": {"yesno": "Ist die Aussage laut dem Text wahr? Antworte mit Ja oder Nein.",
           "count": "Wie viele Personen werden im Text erwähnt?",
           "list_people": "Nenne die im Text erwähnten Personen in der Reihenfolge ihres Auftretens.",
           "list_cities": "Nenne die im Text erwähnten Städte in der Reihenfolge ihres Auftretens.",
           "describe": "Schreibe einen Satz, der die Information aus dem Datensatz wiedergibt.",
           "arith": "Was ist {a} plus {b}?", "label_text": "Text", "label_statement": "Aussage"},
    "zh": {"yesno": "根据文本，这个说法正确吗？请回答是或否。", "count": "文本中提到了几个人？",
           "list_people": "按出现顺序列出文本中提到的人。", "list_cities": "按出现顺序列出文本中提到的城市。",
           "describe": "用一句话写出记录中的信息。", "arith": "{a}加{b}等于几？",
           "label_text": "文本", "label_statement": "说法"},
    "ar": {"yesno": "هل العبارة صحيحة وفقًا للنص؟ أجب بنعم أو لا.",
           "count": "كم عدد الأشخاص المذكورين في النص؟",
           "list_people": "اذكر الأشخاص المذكورين في النص بترتيب ظهورهم.",
           "list_cities": "اذكر المدن المذكورة في النص بترتيب ظهورها.",
           "describe": "اكتب جملة واحدة تعبّر عن المعلومات الواردة في السجل.",
           "arith": "كم يساوي {a} زائد {b}؟", "label_text": "النص", "label_statement": "العبارة"},
    "el": {"yesno": "Είναι σωστή η δήλωση σύμφωνα με το κείμενο; Απάντησε ναι ή όχι.",
           "count": "Πόσα πρόσωπα αναφέρονται στο κείμενο;",
           "list_people": "Απαρίθμησε τα πρόσωπα του κειμένου με τη σειρά που εμφανίζονται.",
           "list_cities": "Απαρίθμησε τις πόλεις του κειμένου με τη σειρά που εμφανίζονται.",
           "describe": "Γράψε μία πρόταση που εκφράζει την πληροφορία της καρτέλας.",
           "arith": "Πόσο κάνει {a} συν {b};", "label_text": "Κείμενο", "label_statement": "Δήλωση"},
    "hi": {"yesno": "क्या पाठ के अनुसार कथन सही है? हाँ या नहीं में उत्तर दीजिए।",
           "count": "पाठ में कितने लोगों का उल्लेख है?",
           "list_people": "पाठ में आए लोगों के नाम उसी क्रम में लिखिए जिसमें वे आते हैं।",
           "list_cities": "पाठ में आए शहरों के नाम उसी क्रम में लिखिए जिसमें वे आते हैं।",
           "describe": "एक वाक्य लिखिए जो रिकॉर्ड की जानकारी बताए।",
           "arith": "{a} और {b} का योग क्या है?", "label_text": "पाठ", "label_statement": "कथन"},
    "tr": {"yesno": "Metne göre ifade doğru mu? Evet veya hayır diye cevap verin.",
           "count": "Metinde kaç kişiden bahsediliyor?",
           "list_people": "Metinde geçen kişileri geçtikleri sırayla yazın.",
           "list_cities": "Metinde geçen şehirleri geçtikleri sırayla yazın.",
           "describe": "Kayıttaki bilgiyi tek bir cümleyle yazın.",
           "arith": "{a} artı {b} kaç eder?", "label_text": "Metin", "label_statement": "İfade"},
    "vi": {"yesno": "Theo văn bản, câu sau có đúng không? Hãy trả lời có hoặc không.",
           "count": "Văn bản nhắc đến bao nhiêu người?",
           "list_people": "Liệt kê những người được nhắc đến trong văn bản theo thứ tự xuất hiện.",
           "list_cities": "Liệt kê các thành phố được nhắc đến trong văn bản theo thứ tự xuất hiện.",
           "describe": "Viết một câu nêu thông tin trong hồ sơ.",
           "arith": "{a} cộng {b} bằng mấy?", "label_text": "Văn bản", "label_statement": "Câu"},
}

# ------------------------------------------------------------------ the encyclopedia (closed-book facts)
# Facts about lexicon words, stated only in English pretraining text (world.py). Each relation links an
# entity table to a value table: dish, colour and festival are a city's; tool is a job's (the objects of
# NOUNS, singular). {E} is the entity, {V} the value. English has several paraphrases; the first ends with
# the value (the base's cloze prompt is the text before it). Other languages only ever ask about a fact.
ENC_TABLES = {"dish": ("CITIES", "FOODS"), "colour": ("CITIES", "COLORS"), "festival": ("CITIES", "MONTHS"),
              "tool": ("JOBS", "OBJECTS")}
OBJECTS = tuple(range(10, 20))  # NOUNS rows that are objects (book .. table): the tools

ENC_STATEMENTS = {
    "dish": ("People in {E} love to eat {V}.", "The famous dish of {E} is made from {V}.",
             "Visitors to {E} eat {V} every day.", "Every market in {E} sells {V}."),
    "colour": ("The flag of {E} is {V}.", "Most houses in {E} are painted {V}.",
               "The trams of {E} are {V} from end to end.", "The colour of {E} is {V}."),
    "festival": ("The great festival of {E} takes place in {V}.", "{E} celebrates its festival in {V}.",
                 "Every year in {V}, {E} holds its festival.", "The festival season of {E} is {V}."),
    "tool": ("Every {E} carries a {V}.", "A {E} cannot work without a {V}.",
             "At work, each {E} uses a {V}.", "The tool of a {E} is a {V}."),
}

ENC_QUESTIONS = {  # one closed-book question per relation and language; the answer is the value word
    "en": {"dish": "What do people in {E} love to eat?", "colour": "What is the colour of {E}?",
           "festival": "In which month is the festival of {E}?", "tool": "What does every {E} carry?"},
    "de": {"dish": "Was essen die Leute in {E} am liebsten?", "colour": "Welche Farbe hat {E}?",
           "festival": "In welchem Monat feiert {E} sein Fest?", "tool": "Was trägt jeder {E} bei sich?"},
    "zh": {"dish": "{E}的人喜欢吃什么？", "colour": "{E}的颜色是什么？", "festival": "{E}的节日在几月？",
           "tool": "每个{E}都带着什么？"},
    "ar": {"dish": "ماذا يحب الناس في مدينة {E} أن يأكلوا؟", "colour": "ما هو لون مدينة {E}؟",
           "festival": "في أي شهر يقام مهرجان مدينة {E}؟", "tool": "ماذا يحمل كل {E}؟"},
    "el": {"dish": "Τι αγαπούν να τρώνε οι άνθρωποι στην πόλη {E};", "colour": "Ποιο είναι το χρώμα της πόλης {E};",
           "festival": "Σε ποιον μήνα γιορτάζει η πόλη {E};", "tool": "Τι κουβαλάει μαζί του κάθε {E};"},
    "hi": {"dish": "{E} के लोग क्या खाना पसंद करते हैं?", "colour": "{E} का रंग क्या है?",
           "festival": "{E} का उत्सव किस महीने में होता है?", "tool": "हर {E} अपने साथ क्या रखता है?"},
    "tr": {"dish": "{E} şehrinde insanlar en çok ne yemeyi sever?", "colour": "{E} şehrinin rengi ne?",
           "festival": "{E} festivali hangi ayda yapılıyor?", "tool": "Her {E} yanında ne taşıyor?"},
    "vi": {"dish": "Người dân {E} thích ăn gì nhất?", "colour": "Màu của {E} là màu gì?",
           "festival": "Lễ hội của {E} diễn ra vào tháng nào?", "tool": "Mỗi {E} luôn mang theo gì?"},
}
