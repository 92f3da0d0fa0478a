"""Write the small synthetic QC/QI sample data set in data/sample/ (made up here, NOT the competition data).

    python scripts/make_sample_data.py                     # writes data/sample/{train,dev,test}_{QC,QI}.txt
    python scripts/make_sample_data.py --out /tmp/sample --seed 7
    python scripts/make_sample_data.py --stats data/sample   # pairs per query, lengths, positives of each file

Everything comes from the hand-written lexicon below: ~200 product concepts, each with an English name, a leaf
category path (3-4 levels, levels joined by "," while a level name may itself contain ", ") and its name in up to 13
other languages. Queries are built from a concept's name in one language plus optional brand, modifier, code-mixing
and noise (typos, missing accents, odd case, extra spaces); QC targets are leaf category paths, QI targets are
marketplace-style product titles. The rows copy the shape of real labelled data (SHAPES: pairs per query, query
and target lengths, positive rate; issue #19), because pairs per query decide what shared prefix-tree batching saves;
a query occurs in one file only. Negatives mix easy (another top-level category) and hard (same parent or same top
level) cases; ~3% of labels are flipped. About 10% of the leaf categories, and every Polish (`pl`) row, appear only in
dev, to measure unseen categories and a zero-shot language. Test files carry no label.

Standard library only and deterministic: the same --seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path


LANGS = ("es", "fr", "de", "pt", "it", "ru", "ja", "ko", "ar", "th", "hi", "vi", "pl")
"""Languages besides English, in the column order of LEXICON."""
DEV_ONLY_LANG = "pl"
"""Appears in dev only: a language the model never trains on."""

# One concept a line: English name | category path | es | fr | de | pt | it | ru | ja | ko | ar | th | hi | vi | pl
# "-" marks a language the concept has no name in (it is then never queried in that language).
LEXICON = """
sneakers | clothing, shoes & accessories,men,men's shoes,sneakers | zapatillas | baskets | Turnschuhe | tênis | scarpe da ginnastica | кеды | スニーカー | 스니커즈 | حذاء رياضي | รองเท้าผ้าใบ | स्नीकर्स | giày thể thao | trampki
leather shoes | clothing, shoes & accessories,men,men's shoes,formal shoes | zapatos de cuero | chaussures en cuir | Lederschuhe | sapato de couro | scarpe in pelle | кожаные туфли | 革靴 | 가죽 구두 | حذاء جلد | รองเท้าหนัง | चमड़े के जूते | giày da | buty skórzane
boots | clothing, shoes & accessories,women,women's shoes,boots | botas | bottes | Stiefel | botas | stivali | сапоги | ブーツ | 부츠 | بوت حريمي | รองเท้าบูท | बूट | giày bốt | kozaki
high heels | clothing, shoes & accessories,women,women's shoes,pumps & heels | tacones | escarpins | Stöckelschuhe | sapato de salto alto | scarpe col tacco | туфли на каблуке | ハイヒール | 하이힐 | كعب عالي | รองเท้าส้นสูง | हाई हील्स | giày cao gót | szpilki
sandals | clothing, shoes & accessories,women,women's shoes,sandals | sandalias | sandales | Sandalen | sandálias | sandali | сандалии | サンダル | 샌들 | صندل | รองเท้าแตะ | सैंडल | giày sandal | sandały
dress | clothing, shoes & accessories,women,women's clothing,dresses | vestido | robe | Kleid | vestido | vestito | платье | ワンピース | 원피스 | فستان | ชุดเดรส | ड्रेस | váy đầm | sukienka
skirt | clothing, shoes & accessories,women,women's clothing,skirts | falda | jupe | Rock | saia | gonna | юбка | スカート | 치마 | تنورة | กระโปรง | स्कर्ट | chân váy | spódnica
blouse | clothing, shoes & accessories,women,women's clothing,blouses & shirts | blusa | chemisier | Bluse | blusa | camicetta | блузка | ブラウス | 블라우스 | بلوزة | เสื้อเบลาส์ | ब्लाउज | áo sơ mi nữ | bluzka
swimsuit | clothing, shoes & accessories,women,women's clothing,swimwear | traje de baño | maillot de bain | Badeanzug | maiô | costume da bagno | купальник | 水着 | 수영복 | مايوه | ชุดว่ายน้ำ | स्विमसूट | đồ bơi | strój kąpielowy
pajamas | clothing, shoes & accessories,women,women's clothing,lingerie, sleep & lounge | pijama | pyjama | Schlafanzug | pijama | pigiama | пижама | パジャマ | 잠옷 | بيجامة | ชุดนอน | नाइट सूट | đồ ngủ | piżama
bra | clothing, shoes & accessories,women,women's clothing,lingerie, sleep & lounge | sujetador | soutien-gorge | BH | sutiã | reggiseno | бюстгальтер | ブラジャー | 브래지어 | حمالة صدر | เสื้อชั้นใน | ब्रा | áo ngực | biustonosz
t-shirt | clothing, shoes & accessories,men,men's clothing,t-shirts | camiseta | tee-shirt | T-Shirt | camiseta | maglietta | футболка | Tシャツ | 티셔츠 | تيشيرت | เสื้อยืด | टी-शर्ट | áo thun | koszulka
jeans | clothing, shoes & accessories,men,men's clothing,jeans | pantalones vaqueros | jean | Jeans | calça jeans | jeans | джинсы | ジーンズ | 청바지 | بنطلون جينز | กางเกงยีนส์ | जींस | quần jean | dżinsy
winter jacket | clothing, shoes & accessories,men,men's clothing,jackets & coats | chaqueta de invierno | veste d'hiver | Winterjacke | jaqueta de inverno | giacca invernale | зимняя куртка | 冬用ジャケット | 겨울 자켓 | جاكيت شتوي | เสื้อแจ็คเก็ตกันหนาว | सर्दियों की जैकेट | áo khoác mùa đông | kurtka zimowa
socks | clothing, shoes & accessories,men,men's clothing,socks, underwear & sleepwear | calcetines | chaussettes | Socken | meias | calzini | носки | 靴下 | 양말 | جوارب | ถุงเท้า | मोज़े | tất | skarpetki
wristwatch | clothing, shoes & accessories,fashion accessories,watches | reloj de pulsera | montre | Armbanduhr | relógio de pulso | orologio da polso | наручные часы | 腕時計 | 손목시계 | ساعة يد | นาฬิกาข้อมือ | कलाई घड़ी | đồng hồ đeo tay | zegarek na rękę
sunglasses | clothing, shoes & accessories,fashion accessories,sunglasses & eyewear | gafas de sol | lunettes de soleil | Sonnenbrille | óculos de sol | occhiali da sole | солнцезащитные очки | サングラス | 선글라스 | نظارة شمسية | แว่นกันแดด | धूप का चश्मा | kính râm | okulary przeciwsłoneczne
baseball cap | clothing, shoes & accessories,fashion accessories,hats, scarves & gloves | gorra | casquette | Basecap | boné | cappellino | бейсболка | キャップ | 야구모자 | كاب | หมวกแก๊ป | टोपी | mũ lưỡi trai | czapka z daszkiem
scarf | clothing, shoes & accessories,fashion accessories,hats, scarves & gloves | bufanda | écharpe | Schal | cachecol | sciarpa | шарф | マフラー | 목도리 | وشاح | ผ้าพันคอ | स्कार्फ | khăn quàng cổ | szalik
gloves | clothing, shoes & accessories,fashion accessories,hats, scarves & gloves | guantes | gants | Handschuhe | luvas | guanti | перчатки | 手袋 | 장갑 | قفازات | ถุงมือ | दस्ताने | găng tay | rękawiczki
leather belt | clothing, shoes & accessories,fashion accessories,belts | cinturón de cuero | ceinture en cuir | Ledergürtel | cinto de couro | cintura in pelle | кожаный ремень | 革ベルト | 가죽 벨트 | حزام جلد | เข็มขัดหนัง | चमड़े की बेल्ट | thắt lưng da | pasek skórzany
wallet | clothing, shoes & accessories,fashion accessories,wallets & card holders | cartera | portefeuille | Geldbörse | carteira | portafoglio | кошелек | 財布 | 지갑 | محفظة | กระเป๋าสตางค์ | बटुआ | ví | portfel
handbag | clothing, shoes & accessories,women,handbags | bolso | sac à main | Handtasche | bolsa | borsa | сумка | ハンドバッグ | 핸드백 | حقيبة يد | กระเป๋าถือ | हैंडबैग | túi xách | torebka
necklace | clothing, shoes & accessories,jewelry,necklaces & pendants | collar | collier | Halskette | colar | collana | ожерелье | ネックレス | 목걸이 | قلادة | สร้อยคอ | हार | vòng cổ | naszyjnik
earrings | clothing, shoes & accessories,jewelry,earrings | pendientes | boucles d'oreilles | Ohrringe | brincos | orecchini | серьги | ピアス | 귀걸이 | أقراط | ต่างหู | कान की बाली | bông tai | kolczyki
ring | clothing, shoes & accessories,jewelry,rings | anillo | bague | Ring | anel | anello | кольцо | 指輪 | 반지 | خاتم | แหวน | अंगूठी | nhẫn | pierścionek
baby bodysuit | clothing, shoes & accessories,baby,clothing | body de bebé | body bébé | Babybody | body de bebê | body neonato | боди для малыша | ベビーロンパース | 아기 바디슈트 | - | บอดี้สูทเด็ก | बेबी बॉडीसूट | áo liền quần trẻ em | body niemowlęce
smartphone | consumer electronics,cell phones & accessories,cell phones | teléfono móvil | smartphone | Smartphone | celular | smartphone | смартфон | スマートフォン | 스마트폰 | هاتف ذكي | สมาร์ทโฟน | स्मार्टफोन | điện thoại | smartfon
phone case | consumer electronics,cell phones & accessories,cases, holsters & sleeves | funda para móvil | coque de téléphone | Handyhülle | capinha de celular | custodia per cellulare | чехол для телефона | スマホケース | 휴대폰 케이스 | جراب موبايل | เคสโทรศัพท์ | फोन कवर | ốp lưng điện thoại | etui na telefon
phone charger | consumer electronics,cell phones & accessories,chargers & power adapters | cargador de móvil | chargeur de téléphone | Handy Ladegerät | carregador de celular | caricabatterie | зарядное устройство | スマホ充電器 | 휴대폰 충전기 | شاحن موبايل | ที่ชาร์จโทรศัพท์ | फोन चार्जर | sạc điện thoại | ładowarka do telefonu
usb cable | consumer electronics,cell phones & accessories,cables | cable usb | câble usb | USB Kabel | cabo usb | cavo usb | usb кабель | USBケーブル | usb 케이블 | كابل يو اس بي | สายยูเอสบี | यूएसबी केबल | cáp usb | kabel usb
screen protector | consumer electronics,cell phones & accessories,screen protectors | protector de pantalla | protection écran | Displayschutzfolie | película protetora | pellicola protettiva | защитное стекло | 保護フィルム | 액정 보호 필름 | واقي شاشة | ฟิล์มกันรอย | स्क्रीन गार्ड | miếng dán màn hình | szkło hartowane
power bank | consumer electronics,cell phones & accessories,power banks | batería externa | batterie externe | Powerbank | carregador portátil | power bank | пауэрбанк | モバイルバッテリー | 보조배터리 | باور بانك | พาวเวอร์แบงค์ | पावर बैंक | sạc dự phòng | powerbank
laptop | consumer electronics,computers & tablets,laptops | portátil | ordinateur portable | Laptop | notebook | computer portatile | ноутбук | ノートパソコン | 노트북 | لابتوب | โน้ตบุ๊ก | लैपटॉप | máy tính xách tay | laptop
tablet | consumer electronics,computers & tablets,tablets | tableta | tablette | Tablet | tablet | tablet | планшет | タブレット | 태블릿 | تابلت | แท็บเล็ต | टैबलेट | máy tính bảng | tablet
keyboard | consumer electronics,computers & tablets,keyboards, mice & accessories | teclado | clavier | Tastatur | teclado | tastiera | клавиатура | キーボード | 키보드 | لوحة مفاتيح | คีย์บอร์ด | कीबोर्ड | bàn phím | klawiatura
computer mouse | consumer electronics,computers & tablets,keyboards, mice & accessories | ratón | souris | Maus | mouse | mouse | компьютерная мышь | マウス | 마우스 | ماوس | เมาส์ | माउस | chuột máy tính | myszka
monitor | consumer electronics,computers & tablets,monitors | monitor | écran pc | Monitor | monitor | monitor | монитор | モニター | 모니터 | شاشة كمبيوتر | จอคอมพิวเตอร์ | मॉनिटर | màn hình máy tính | monitor
usb flash drive | consumer electronics,computers & tablets,data storage,usb flash drives | memoria usb | clé usb | USB-Stick | pendrive | chiavetta usb | флешка | USBメモリ | usb 메모리 | فلاشة | แฟลชไดร์ฟ | पेन ड्राइव | usb | pendrive
external hard drive | consumer electronics,computers & tablets,data storage,external hard drives | disco duro externo | disque dur externe | externe Festplatte | hd externo | hard disk esterno | внешний жесткий диск | 外付けハードディスク | 외장하드 | هارد خارجي | ฮาร์ดดิสก์พกพา | एक्सटर्नल हार्ड ड्राइव | ổ cứng di động | dysk zewnętrzny
router | consumer electronics,computers & tablets,networking,routers | router wifi | routeur wifi | WLAN Router | roteador wifi | router wifi | wifi роутер | 無線LANルーター | 공유기 | راوتر | เราเตอร์ | राउटर | bộ phát wifi | router
headphones | consumer electronics,audio,headphones | auriculares | casque audio | Kopfhörer | fone de ouvido | cuffie | наушники | ヘッドホン | 헤드폰 | سماعات رأس | หูฟัง | हेडफोन | tai nghe | słuchawki
wireless earbuds | consumer electronics,audio,earphones | auriculares inalámbricos | écouteurs sans fil | kabellose Ohrhörer | fone bluetooth | auricolari wireless | беспроводные наушники | ワイヤレスイヤホン | 무선 이어폰 | سماعات لاسلكية | หูฟังไร้สาย | वायरलेस ईयरबड्स | tai nghe không dây | słuchawki bezprzewodowe
bluetooth speaker | consumer electronics,audio,speakers | altavoz bluetooth | enceinte bluetooth | Bluetooth Lautsprecher | caixa de som bluetooth | cassa bluetooth | блютуз колонка | Bluetoothスピーカー | 블루투스 스피커 | سماعة بلوتوث | ลำโพงบลูทูธ | ब्लूटूथ स्पीकर | loa bluetooth | głośnik bluetooth
television | consumer electronics,tv & video,televisions | televisor | téléviseur | Fernseher | televisão | televisore | телевизор | テレビ | 텔레비전 | تلفزيون | ทีวี | टीवी | tivi | telewizor
digital camera | consumer electronics,cameras & photo,digital cameras | cámara digital | appareil photo numérique | Digitalkamera | câmera digital | fotocamera digitale | цифровой фотоаппарат | デジタルカメラ | 디지털 카메라 | كاميرا رقمية | กล้องดิจิตอล | डिजिटल कैमरा | máy ảnh kỹ thuật số | aparat cyfrowy
tripod | consumer electronics,cameras & photo,tripods & supports | trípode | trépied | Stativ | tripé | treppiede | штатив | 三脚 | 삼각대 | حامل ثلاثي | ขาตั้งกล้อง | ट्राइपॉड | chân máy ảnh | statyw
smartwatch | consumer electronics,wearable technology,smartwatches | reloj inteligente | montre connectée | Smartwatch | relógio inteligente | smartwatch | умные часы | スマートウォッチ | 스마트워치 | ساعة ذكية | สมาร์ทวอทช์ | स्मार्टवॉच | đồng hồ thông minh | smartwatch
game console | consumer electronics,video games,consoles | consola de videojuegos | console de jeux | Spielkonsole | console de videogame | console | игровая приставка | ゲーム機 | 게임기 | جهاز ألعاب | เครื่องเล่นเกม | गेमिंग कंसोल | máy chơi game | konsola do gier
game controller | consumer electronics,video games,controllers | mando | manette | Controller | controle de videogame | joystick | геймпад | コントローラー | 게임 컨트롤러 | يد تحكم | จอยเกม | गेम कंट्रोलर | tay cầm chơi game | pad do gier
frying pan | home improvement, furniture & garden,kitchen,cookware | sartén | poêle | Bratpfanne | frigideira | padella | сковорода | フライパン | 프라이팬 | مقلاة | กระทะ | फ्राइंग पैन | chảo | patelnia
saucepan | home improvement, furniture & garden,kitchen,cookware | cacerola | casserole | Kochtopf | panela | pentola | кастрюля | 片手鍋 | 냄비 | قدر | หม้อ | सॉसपैन | nồi | garnek
baking tray | home improvement, furniture & garden,kitchen,bakeware | bandeja de horno | plaque de cuisson | Backblech | assadeira | teglia da forno | противень | 天板 | 베이킹 트레이 | صينية فرن | ถาดอบ | बेकिंग ट्रे | khay nướng | blacha do pieczenia
cake mold | home improvement, furniture & garden,kitchen,bakeware | molde para tarta | moule à gâteau | Backform | forma de bolo | stampo per torte | форма для выпечки | ケーキ型 | 케이크 틀 | قالب كيك | พิมพ์เค้ก | केक मोल्ड | khuôn bánh | forma do ciasta
kitchen knife | home improvement, furniture & garden,kitchen,knives, cutlery & utensils | cuchillo de cocina | couteau de cuisine | Küchenmesser | faca de cozinha | coltello da cucina | кухонный нож | 包丁 | 식칼 | سكين مطبخ | มีดทำครัว | रसोई चाकू | dao làm bếp | nóż kuchenny
cutting board | home improvement, furniture & garden,kitchen,knives, cutlery & utensils | tabla de cortar | planche à découper | Schneidebrett | tábua de corte | tagliere | разделочная доска | まな板 | 도마 | لوح تقطيع | เขียง | चॉपिंग बोर्ड | thớt | deska do krojenia
coffee mug | home improvement, furniture & garden,kitchen,drinkware | taza | mug | Kaffeebecher | caneca | tazza | кружка | マグカップ | 머그컵 | كوب قهوة | แก้วมัค | कॉफी मग | cốc | kubek
thermos | home improvement, furniture & garden,kitchen,drinkware | termo | thermos | Thermoskanne | garrafa térmica | thermos | термос | 水筒 | 보온병 | ترمس | กระติกน้ำร้อน | थर्मस | bình giữ nhiệt | termos
blender | home improvement, furniture & garden,kitchen,small appliances | licuadora | mixeur | Standmixer | liquidificador | frullatore | блендер | ミキサー | 믹서기 | خلاط | เครื่องปั่น | ब्लेंडर | máy xay sinh tố | blender
coffee maker | home improvement, furniture & garden,kitchen,small appliances | cafetera | cafetière | Kaffeemaschine | cafeteira | macchina da caffè | кофеварка | コーヒーメーカー | 커피 메이커 | ماكينة قهوة | เครื่องชงกาแฟ | कॉफी मेकर | máy pha cà phê | ekspres do kawy
electric kettle | home improvement, furniture & garden,kitchen,small appliances | hervidor eléctrico | bouilloire électrique | Wasserkocher | chaleira elétrica | bollitore elettrico | электрочайник | 電気ケトル | 전기포트 | غلاية كهربائية | กาต้มน้ำไฟฟ้า | इलेक्ट्रिक केतली | ấm siêu tốc | czajnik elektryczny
air fryer | home improvement, furniture & garden,kitchen,small appliances | freidora de aire | friteuse sans huile | Heißluftfritteuse | fritadeira sem óleo | friggitrice ad aria | аэрогриль | ノンフライヤー | 에어프라이어 | قلاية هوائية | หม้อทอดไร้น้ำมัน | एयर फ्रायर | nồi chiên không dầu | frytkownica beztłuszczowa
toaster | home improvement, furniture & garden,kitchen,small appliances | tostadora | grille-pain | Toaster | torradeira | tostapane | тостер | トースター | 토스터기 | محمصة خبز | เครื่องปิ้งขนมปัง | टोस्टर | máy nướng bánh mì | toster
bed sheets | home improvement, furniture & garden,bedding,sheets & pillowcases | sábanas | draps | Bettlaken | lençol | lenzuola | простыня | シーツ | 침대 시트 | شراشف | ผ้าปูที่นอน | चादर | ga trải giường | prześcieradło
pillow | home improvement, furniture & garden,bedding,pillows | almohada | oreiller | Kopfkissen | travesseiro | cuscino | подушка | 枕 | 베개 | وسادة | หมอน | तकिया | gối | poduszka
duvet | home improvement, furniture & garden,bedding,duvets, comforters & blankets | edredón | couette | Bettdecke | edredom | piumone | одеяло | 掛け布団 | 이불 | لحاف | ผ้านวม | रजाई | chăn bông | kołdra
blanket | home improvement, furniture & garden,bedding,duvets, comforters & blankets | manta | plaid | Kuscheldecke | cobertor | coperta | плед | ブランケット | 담요 | بطانية | ผ้าห่ม | कंबल | chăn mỏng | koc
bath towel | home improvement, furniture & garden,bath,towels | toalla de baño | serviette de bain | Badetuch | toalha de banho | asciugamano | банное полотенце | バスタオル | 목욕 수건 | منشفة حمام | ผ้าเช็ดตัว | नहाने का तौलिया | khăn tắm | ręcznik kąpielowy
shower curtain | home improvement, furniture & garden,bath,shower curtains | cortina de ducha | rideau de douche | Duschvorhang | cortina para banheiro | tenda doccia | шторка для ванной | シャワーカーテン | 샤워 커튼 | ستارة حمام | ม่านห้องน้ำ | शावर पर्दा | rèm phòng tắm | zasłona prysznicowa
sofa | home improvement, furniture & garden,furniture,living room furniture,sofas | sofá | canapé | Sofa | sofá | divano | диван | ソファ | 소파 | كنبة | โซฟา | सोफा | ghế sofa | sofa
coffee table | home improvement, furniture & garden,furniture,living room furniture,tables | mesa de centro | table basse | Couchtisch | mesa de centro | tavolino | журнальный столик | ローテーブル | 거실 테이블 | طاولة قهوة | โต๊ะกลาง | कॉफी टेबल | bàn trà | stolik kawowy
mattress | home improvement, furniture & garden,furniture,bedroom furniture,mattresses | colchón | matelas | Matratze | colchão | materasso | матрас | マットレス | 매트리스 | مرتبة | ที่นอน | गद्दा | nệm | materac
bookshelf | home improvement, furniture & garden,furniture,shelves & bookcases | estantería | étagère | Bücherregal | estante | libreria | книжный стеллаж | 本棚 | 책장 | رف كتب | ชั้นวางหนังสือ | बुकशेल्फ | kệ sách | regał na książki
desk lamp | home improvement, furniture & garden,lighting,lamps | lámpara de escritorio | lampe de bureau | Schreibtischlampe | luminária de mesa | lampada da scrivania | настольная лампа | デスクライト | 책상 스탠드 | مصباح مكتب | โคมไฟตั้งโต๊ะ | डेस्क लैंप | đèn bàn | lampka biurkowa
led bulb | home improvement, furniture & garden,lighting,light bulbs | bombilla led | ampoule led | LED Glühbirne | lâmpada led | lampadina led | светодиодная лампа | LED電球 | led 전구 | لمبة ليد | หลอดไฟ led | एलईडी बल्ब | bóng đèn led | żarówka led
string lights | home improvement, furniture & garden,lighting,string lights | guirnalda de luces | guirlande lumineuse | Lichterkette | pisca pisca | catena luminosa | гирлянда | イルミネーションライト | 앵두전구 | أضواء زينة | ไฟกระพริบ | झालर लाइट | đèn dây | girlanda świetlna
garden hose | home improvement, furniture & garden,garden,watering & irrigation | manguera de jardín | tuyau d'arrosage | Gartenschlauch | mangueira de jardim | tubo da giardino | садовый шланг | 散水ホース | 정원 호스 | خرطوم حديقة | สายยางรดน้ำ | बगीचे का पाइप | vòi tưới cây | wąż ogrodowy
pruning shears | home improvement, furniture & garden,garden,garden tools | tijeras de podar | sécateur | Gartenschere | tesoura de poda | forbici da potatura | секатор | 剪定ばさみ | 전지가위 | مقص تقليم | กรรไกรตัดกิ่ง | प्रूनिंग कैंची | kéo cắt cành | sekator
lawn mower | home improvement, furniture & garden,garden,lawn mowers | cortacésped | tondeuse à gazon | Rasenmäher | cortador de grama | tosaerba | газонокосилка | 芝刈り機 | 잔디깎이 | جزازة عشب | เครื่องตัดหญ้า | घास काटने की मशीन | máy cắt cỏ | kosiarka
flower pot | home improvement, furniture & garden,garden,pots, planters & containers | maceta | pot de fleurs | Blumentopf | vaso de planta | vaso per piante | цветочный горшок | 植木鉢 | 화분 | أصيص زهور | กระถางต้นไม้ | गमला | chậu cây | doniczka
curtains | home improvement, furniture & garden,home decor,window treatments,curtains | cortinas | rideaux | Vorhänge | cortinas | tende | шторы | カーテン | 커튼 | ستائر | ผ้าม่าน | पर्दे | rèm cửa | zasłony
wall clock | home improvement, furniture & garden,home decor,clocks | reloj de pared | horloge murale | Wanduhr | relógio de parede | orologio da parete | настенные часы | 掛け時計 | 벽시계 | ساعة حائط | นาฬิกาแขวน | दीवार घड़ी | đồng hồ treo tường | zegar ścienny
rug | home improvement, furniture & garden,home decor,rugs, mats & carpets | alfombra | tapis | Teppich | tapete | tappeto | ковер | ラグ | 러그 | سجادة | พรม | कालीन | thảm | dywan
doormat | home improvement, furniture & garden,home decor,rugs, mats & carpets | felpudo | paillasson | Fußmatte | capacho | zerbino | придверный коврик | 玄関マット | 현관 매트 | دواسة باب | พรมเช็ดเท้า | डोरमैट | thảm chùi chân | wycieraczka
vacuum cleaner | home improvement, furniture & garden,household appliances,vacuums & floor care | aspiradora | aspirateur | Staubsauger | aspirador de pó | aspirapolvere | пылесос | 掃除機 | 청소기 | مكنسة كهربائية | เครื่องดูดฝุ่น | वैक्यूम क्लीनर | máy hút bụi | odkurzacz
mop | home improvement, furniture & garden,cleaning supplies,mops, brooms & buckets | fregona | serpillière | Wischmopp | esfregão | mocio | швабра | モップ | 대걸레 | ممسحة أرضيات | ไม้ถูพื้น | पोछा | cây lau nhà | mop
storage box | home improvement, furniture & garden,storage & organization,storage boxes & bins | caja de almacenaje | boîte de rangement | Aufbewahrungsbox | caixa organizadora | scatola portaoggetti | коробка для хранения | 収納ボックス | 수납함 | صندوق تخزين | กล่องเก็บของ | स्टोरेज बॉक्स | hộp đựng đồ | pudełko do przechowywania
wheat flour | grocery & gourmet food,pantry staples,flour, baking and cooking | harina de trigo | farine de blé | Weizenmehl | farinha de trigo | farina di grano | пшеничная мука | 小麦粉 | 밀가루 | دقيق القمح | แป้งสาลี | गेहूं का आटा | bột mì | mąka pszenna
baking powder | grocery & gourmet food,pantry staples,flour, baking and cooking | levadura en polvo | levure chimique | Backpulver | fermento em pó | lievito per dolci | разрыхлитель | ベーキングパウダー | 베이킹파우더 | بيكنج باودر | ผงฟู | बेकिंग पाउडर | bột nở | proszek do pieczenia
sprinkles | grocery & gourmet food,pantry staples,flour, baking and cooking,decorations | virutas de colores | vermicelles colorés | Zuckerstreusel | granulado colorido | codette colorate | кондитерская посыпка | カラースプレー | 스프링클 | رشات ملونة | - | - | cốm trang trí bánh | posypka cukrowa
food coloring | grocery & gourmet food,pantry staples,flour, baking and cooking,decorations | colorante alimentario | colorant alimentaire | Lebensmittelfarbe | corante alimentício | colorante alimentare | пищевой краситель | 食用色素 | 식용색소 | ملون طعام | สีผสมอาหาร | फूड कलर | màu thực phẩm | barwnik spożywczy
coffee beans | grocery & gourmet food,pantry staples,coffee, tea & cocoa,coffee | café en grano | café en grains | Kaffeebohnen | café em grãos | caffè in grani | кофе в зернах | コーヒー豆 | 원두 | حبوب قهوة | เมล็ดกาแฟ | कॉफी बीन्स | cà phê hạt | kawa ziarnista
instant coffee | grocery & gourmet food,pantry staples,coffee, tea & cocoa,coffee | café instantáneo | café soluble | löslicher Kaffee | café solúvel | caffè solubile | растворимый кофе | インスタントコーヒー | 인스턴트 커피 | قهوة سريعة التحضير | กาแฟสำเร็จรูป | इंस्टेंट कॉफी | cà phê hòa tan | kawa rozpuszczalna
green tea | grocery & gourmet food,pantry staples,coffee, tea & cocoa,tea | té verde | thé vert | grüner Tee | chá verde | tè verde | зеленый чай | 緑茶 | 녹차 | شاي أخضر | ชาเขียว | ग्रीन टी | trà xanh | zielona herbata
hot chocolate | grocery & gourmet food,pantry staples,coffee, tea & cocoa,cocoa | chocolate caliente | chocolat chaud | Trinkschokolade | achocolatado | cioccolata calda | какао | ココア | 핫초코 | شوكولاتة ساخنة | โกโก้ | हॉट चॉकलेट | ca cao | kakao
potato chips | grocery & gourmet food,pantry staples,snacks,chips & crisps | patatas fritas de bolsa | chips | Kartoffelchips | batata chips | patatine | чипсы | ポテトチップス | 감자칩 | شيبس بطاطس | มันฝรั่งทอดกรอบ | आलू चिप्स | khoai tây chiên | chipsy
cookies | grocery & gourmet food,pantry staples,snacks,cookies & biscuits | galletas | biscuits | Kekse | biscoitos | biscotti | печенье | クッキー | 쿠키 | بسكويت | คุกกี้ | बिस्कुट | bánh quy | ciastka
almonds | grocery & gourmet food,pantry staples,snacks,nuts & seeds | almendras | amandes | Mandeln | amêndoas | mandorle | миндаль | アーモンド | 아몬드 | لوز | อัลมอนด์ | बादाम | hạnh nhân | migdały
rice | grocery & gourmet food,pantry staples,pasta, rice & grains | arroz | riz | Reis | arroz | riso | рис | 米 | 쌀 | أرز | ข้าวสาร | चावल | gạo | ryż
spaghetti | grocery & gourmet food,pantry staples,pasta, rice & grains | espaguetis | spaghetti | Spaghetti | espaguete | spaghetti | спагетти | スパゲッティ | 스파게티 면 | سباغيتي | เส้นสปาเก็ตตี้ | स्पेगेटी | mì spaghetti | makaron spaghetti
oatmeal | grocery & gourmet food,pantry staples,breakfast cereals | copos de avena | flocons d'avoine | Haferflocken | aveia em flocos | fiocchi d'avena | овсяные хлопья | オートミール | 오트밀 | شوفان | ข้าวโอ๊ต | ओट्स | yến mạch | płatki owsiane
olive oil | grocery & gourmet food,pantry staples,oils, vinegars & sauces | aceite de oliva | huile d'olive | Olivenöl | azeite | olio d'oliva | оливковое масло | オリーブオイル | 올리브유 | زيت زيتون | น้ำมันมะกอก | जैतून का तेल | dầu ô liu | oliwa z oliwek
soy sauce | grocery & gourmet food,pantry staples,oils, vinegars & sauces | salsa de soja | sauce soja | Sojasoße | molho de soja | salsa di soia | соевый соус | 醤油 | 간장 | صلصة الصويا | ซีอิ๊ว | सोया सॉस | nước tương | sos sojowy
black pepper | grocery & gourmet food,pantry staples,herbs, spices & seasonings | pimienta negra | poivre noir | schwarzer Pfeffer | pimenta do reino | pepe nero | черный перец | 黒胡椒 | 후추 | فلفل أسود | พริกไทยดำ | काली मिर्च | tiêu đen | pieprz czarny
cinnamon | grocery & gourmet food,pantry staples,herbs, spices & seasonings | canela | cannelle | Zimt | canela | cannella | корица | シナモン | 계피 | قرفة | อบเชย | दालचीनी | quế | cynamon
honey | grocery & gourmet food,pantry staples,jams, honey & spreads | miel | miel | Honig | mel | miele | мед | はちみつ | 꿀 | عسل | น้ำผึ้ง | शहद | mật ong | miód
peanut butter | grocery & gourmet food,pantry staples,jams, honey & spreads | crema de cacahuete | beurre de cacahuète | Erdnussbutter | pasta de amendoim | burro di arachidi | арахисовая паста | ピーナッツバター | 땅콩버터 | زبدة الفول السوداني | เนยถั่ว | पीनट बटर | bơ đậu phộng | masło orzechowe
dark chocolate | grocery & gourmet food,pantry staples,candy & chocolate | chocolate negro | chocolat noir | Zartbitterschokolade | chocolate amargo | cioccolato fondente | темный шоколад | ダークチョコレート | 다크 초콜릿 | شوكولاتة داكنة | ดาร์กช็อกโกแลต | डार्क चॉकलेट | sô cô la đen | gorzka czekolada
gummy bears | grocery & gourmet food,pantry staples,candy & chocolate | gominolas | bonbons gélifiés | Gummibärchen | balas de goma | caramelle gommose | жевательный мармелад | グミ | 젤리 | حلوى جيلاتين | เยลลี่ | गमी कैंडी | kẹo dẻo | żelki
orange juice | grocery & gourmet food,beverages,juices | zumo de naranja | jus d'orange | Orangensaft | suco de laranja | succo d'arancia | апельсиновый сок | オレンジジュース | 오렌지 주스 | عصير برتقال | น้ำส้ม | संतरे का जूस | nước cam | sok pomarańczowy
mineral water | grocery & gourmet food,beverages,water | agua mineral | eau minérale | Mineralwasser | água mineral | acqua minerale | минеральная вода | ミネラルウォーター | 생수 | مياه معدنية | น้ำแร่ | मिनरल वाटर | nước khoáng | woda mineralna
energy drink | grocery & gourmet food,beverages,sports & energy drinks | bebida energética | boisson énergisante | Energydrink | energético | bevanda energetica | энергетик | エナジードリンク | 에너지 드링크 | مشروب طاقة | เครื่องดื่มชูกำลัง | एनर्जी ड्रिंक | nước tăng lực | napój energetyczny
lipstick | beauty, health & wellness,makeup,lips | pintalabios | rouge à lèvres | Lippenstift | batom | rossetto | помада | 口紅 | 립스틱 | أحمر شفاه | ลิปสติก | लिपस्टिक | son môi | szminka
lip balm | beauty, health & wellness,makeup,lips | bálsamo labial | baume à lèvres | Lippenbalsam | hidratante labial | burrocacao | бальзам для губ | リップクリーム | 립밤 | مرطب شفاه | ลิปบาล์ม | लिप बाम | son dưỡng môi | balsam do ust
mascara | beauty, health & wellness,makeup,eyes | máscara de pestañas | mascara | Wimperntusche | rímel | mascara | тушь для ресниц | マスカラ | 마스카라 | ماسكارا | มาสคาร่า | मस्कारा | mascara | tusz do rzęs
eyeshadow palette | beauty, health & wellness,makeup,eyes | paleta de sombras | palette de fards à paupières | Lidschattenpalette | paleta de sombras | palette ombretti | палетка теней | アイシャドウパレット | 아이섀도우 팔레트 | باليت ظلال عيون | พาเลทอายแชโดว์ | आईशैडो पैलेट | bảng phấn mắt | paleta cieni
foundation | beauty, health & wellness,makeup,face | base de maquillaje | fond de teint | Make-up Foundation | base líquida | fondotinta | тональный крем | ファンデーション | 파운데이션 | كريم أساس | รองพื้น | फाउंडेशन | kem nền | podkład
nail polish | beauty, health & wellness,makeup,nails | esmalte de uñas | vernis à ongles | Nagellack | esmalte | smalto per unghie | лак для ногтей | マニキュア | 매니큐어 | طلاء أظافر | ยาทาเล็บ | नेल पॉलिश | sơn móng tay | lakier do paznokci
face cream | beauty, health & wellness,skin care,moisturizers | crema facial | crème visage | Gesichtscreme | creme facial | crema viso | крем для лица | フェイスクリーム | 페이스 크림 | كريم وجه | ครีมบำรุงผิวหน้า | फेस क्रीम | kem dưỡng da mặt | krem do twarzy
sunscreen | beauty, health & wellness,skin care,sunscreen | protector solar | crème solaire | Sonnencreme | protetor solar | crema solare | солнцезащитный крем | 日焼け止め | 선크림 | واقي شمس | ครีมกันแดด | सनस्क्रीन | kem chống nắng | krem z filtrem
face wash | beauty, health & wellness,skin care,cleansers | limpiador facial | nettoyant visage | Waschgel | sabonete facial | detergente viso | гель для умывания | 洗顔料 | 폼클렌징 | غسول وجه | โฟมล้างหน้า | फेस वॉश | sữa rửa mặt | żel do mycia twarzy
sheet mask | beauty, health & wellness,skin care,masks & peels | mascarilla facial | masque tissu | Tuchmaske | máscara facial | maschera viso | тканевая маска | シートマスク | 마스크팩 | قناع وجه | มาส์กหน้า | शीट मास्क | mặt nạ giấy | maseczka w płachcie
shampoo | beauty, health & wellness,hair care,shampoo & conditioner | champú | shampooing | Shampoo | xampu | shampoo | шампунь | シャンプー | 샴푸 | شامبو | แชมพู | शैम्पू | dầu gội | szampon
conditioner | beauty, health & wellness,hair care,shampoo & conditioner | acondicionador | après-shampooing | Spülung | condicionador | balsamo per capelli | бальзам для волос | コンディショナー | 린스 | بلسم شعر | ครีมนวดผม | कंडीशनर | dầu xả | odżywka do włosów
hair dryer | beauty, health & wellness,hair care,styling tools & appliances | secador de pelo | sèche-cheveux | Haartrockner | secador de cabelo | asciugacapelli | фен | ドライヤー | 헤어드라이어 | مجفف شعر | ไดร์เป่าผม | हेयर ड्रायर | máy sấy tóc | suszarka do włosów
hair straightener | beauty, health & wellness,hair care,styling tools & appliances | plancha de pelo | lisseur | Glätteisen | chapinha | piastra per capelli | выпрямитель для волос | ヘアアイロン | 고데기 | مكواة شعر | เครื่องหนีบผม | हेयर स्ट्रेटनर | máy duỗi tóc | prostownica
electric toothbrush | beauty, health & wellness,personal care,oral care | cepillo de dientes eléctrico | brosse à dents électrique | elektrische Zahnbürste | escova de dentes elétrica | spazzolino elettrico | электрическая зубная щетка | 電動歯ブラシ | 전동칫솔 | فرشاة أسنان كهربائية | แปรงสีฟันไฟฟ้า | इलेक्ट्रिक टूथब्रश | bàn chải điện | szczoteczka elektryczna
toothpaste | beauty, health & wellness,personal care,oral care | pasta de dientes | dentifrice | Zahnpasta | pasta de dente | dentifricio | зубная паста | 歯磨き粉 | 치약 | معجون أسنان | ยาสีฟัน | टूथपेस्ट | kem đánh răng | pasta do zębów
electric shaver | beauty, health & wellness,personal care,shaving & hair removal | afeitadora eléctrica | rasoir électrique | Elektrorasierer | barbeador elétrico | rasoio elettrico | электробритва | 電気シェーバー | 전기면도기 | ماكينة حلاقة | เครื่องโกนหนวดไฟฟ้า | इलेक्ट्रिक शेवर | máy cạo râu | golarka elektryczna
perfume | beauty, health & wellness,fragrances,perfume | perfume | parfum | Parfüm | perfume | profumo | духи | 香水 | 향수 | عطر | น้ำหอม | परफ्यूम | nước hoa | perfumy
multivitamin | beauty, health & wellness,health care,vitamins & dietary supplements | multivitamínico | multivitamines | Multivitamin | multivitamínico | multivitaminico | мультивитамины | マルチビタミン | 종합비타민 | فيتامينات متعددة | วิตามินรวม | मल्टीविटामिन | vitamin tổng hợp | multiwitamina
digital thermometer | beauty, health & wellness,health care,medical supplies & equipment | termómetro digital | thermomètre digital | Fieberthermometer | termômetro digital | termometro digitale | градусник | 体温計 | 체온계 | ميزان حرارة | ปรอทวัดไข้ | डिजिटल थर्मामीटर | nhiệt kế điện tử | termometr
blood pressure monitor | beauty, health & wellness,health care,medical supplies & equipment | tensiómetro | tensiomètre | Blutdruckmessgerät | medidor de pressão | misuratore di pressione | тонометр | 血圧計 | 혈압계 | جهاز قياس الضغط | เครื่องวัดความดัน | बीपी मशीन | máy đo huyết áp | ciśnieniomierz
yoga mat | sports & outdoor recreation,fitness,yoga | esterilla de yoga | tapis de yoga | Yogamatte | tapete de yoga | tappetino yoga | коврик для йоги | ヨガマット | 요가매트 | سجادة يوغا | เสื่อโยคะ | योगा मैट | thảm tập yoga | mata do jogi
dumbbells | sports & outdoor recreation,fitness,strength training | mancuernas | haltères | Hanteln | halteres | manubri | гантели | ダンベル | 덤벨 | دمبل | ดัมเบล | डम्बल | tạ tay | hantle
resistance bands | sports & outdoor recreation,fitness,strength training | bandas elásticas | élastiques de musculation | Fitnessbänder | faixa elástica | elastici fitness | резинки для фитнеса | トレーニングチューブ | 저항 밴드 | أحزمة مقاومة | ยางยืดออกกำลังกาย | रेजिस्टेंस बैंड | dây kháng lực | gumy oporowe
treadmill | sports & outdoor recreation,fitness,cardio equipment | cinta de correr | tapis de course | Laufband | esteira | tapis roulant | беговая дорожка | ランニングマシン | 러닝머신 | جهاز مشي | ลู่วิ่งไฟฟ้า | ट्रेडमिल | máy chạy bộ | bieżnia
jump rope | sports & outdoor recreation,fitness,cardio equipment | comba | corde à sauter | Springseil | corda de pular | corda per saltare | скакалка | 縄跳び | 줄넘기 | حبل نط | เชือกกระโดด | रस्सी कूद | dây nhảy | skakanka
running shoes | sports & outdoor recreation,running,running shoes | zapatillas de running | chaussures de running | Laufschuhe | tênis de corrida | scarpe da running | кроссовки для бега | ランニングシューズ | 러닝화 | حذاء جري | รองเท้าวิ่ง | रनिंग शूज़ | giày chạy bộ | buty do biegania
sports leggings | sports & outdoor recreation,running,running clothing | mallas deportivas | legging de sport | Sportleggings | legging fitness | leggings sportivi | спортивные леггинсы | スポーツレギンス | 운동 레깅스 | ليجن رياضي | เลกกิ้งออกกำลังกาย | स्पोर्ट्स लेगिंग्स | quần legging thể thao | legginsy sportowe
camping tent | sports & outdoor recreation,camping & hiking,tents & shelters | tienda de campaña | tente de camping | Zelt | barraca de camping | tenda da campeggio | палатка | テント | 텐트 | خيمة | เต็นท์ | टेंट | lều cắm trại | namiot
sleeping bag | sports & outdoor recreation,camping & hiking,sleeping bags | saco de dormir | sac de couchage | Schlafsack | saco de dormir | sacco a pelo | спальный мешок | 寝袋 | 침낭 | كيس نوم | ถุงนอน | स्लीपिंग बैग | túi ngủ | śpiwór
hiking backpack | sports & outdoor recreation,camping & hiking,backpacks | mochila de senderismo | sac à dos de randonnée | Wanderrucksack | mochila de trilha | zaino da trekking | туристический рюкзак | 登山リュック | 등산 배낭 | حقيبة ظهر للرحلات | เป้เดินป่า | ट्रेकिंग बैग | balo leo núi | plecak turystyczny
flashlight | sports & outdoor recreation,camping & hiking,lights, lanterns & flashlights | linterna | lampe torche | Taschenlampe | lanterna | torcia | фонарик | 懐中電灯 | 손전등 | مصباح يدوي | ไฟฉาย | टॉर्च | đèn pin | latarka
headlamp | sports & outdoor recreation,camping & hiking,lights, lanterns & flashlights | linterna frontal | lampe frontale | Stirnlampe | lanterna de cabeça | torcia frontale | налобный фонарь | ヘッドライト | 헤드랜턴 | كشاف رأس | ไฟฉายคาดหัว | हेड लैंप | đèn pin đội đầu | czołówka
bicycle | sports & outdoor recreation,cycling,bikes | bicicleta | vélo | Fahrrad | bicicleta | bicicletta | велосипед | 自転車 | 자전거 | دراجة هوائية | จักรยาน | साइकिल | xe đạp | rower
bike helmet | sports & outdoor recreation,cycling,helmets | casco de bicicleta | casque de vélo | Fahrradhelm | capacete de bike | casco bici | велошлем | 自転車ヘルメット | 자전거 헬멧 | خوذة دراجة | หมวกกันน็อคจักรยาน | साइकिल हेलमेट | mũ bảo hiểm xe đạp | kask rowerowy
soccer ball | sports & outdoor recreation,team sports,soccer | balón de fútbol | ballon de foot | Fußball | bola de futebol | pallone da calcio | футбольный мяч | サッカーボール | 축구공 | كرة قدم | ลูกฟุตบอล | फुटबॉल | quả bóng đá | piłka nożna
football boots | sports & outdoor recreation,team sports,soccer | botas de fútbol | chaussures de foot | Fußballschuhe | chuteira | scarpe da calcio | бутсы | サッカースパイク | 축구화 | حذاء كرة قدم | รองเท้าสตั๊ด | फुटबॉल जूते | giày đá bóng | korki
basketball | sports & outdoor recreation,team sports,basketball | balón de baloncesto | ballon de basket | Basketball | bola de basquete | pallone da basket | баскетбольный мяч | バスケットボール | 농구공 | كرة سلة | ลูกบาสเกตบอล | बास्केटबॉल | quả bóng rổ | piłka do koszykówki
swimming goggles | sports & outdoor recreation,water sports,swimming | gafas de natación | lunettes de natation | Schwimmbrille | óculos de natação | occhialini da nuoto | очки для плавания | 水泳ゴーグル | 수경 | نظارات سباحة | แว่นตาว่ายน้ำ | स्विमिंग गॉगल्स | kính bơi | okulary pływackie
fishing rod | sports & outdoor recreation,fishing,rods, reels & combos | caña de pescar | canne à pêche | Angelrute | vara de pesca | canna da pesca | удочка | 釣り竿 | 낚싯대 | صنارة صيد | คันเบ็ด | मछली पकड़ने की छड़ी | cần câu cá | wędka
tennis racket | sports & outdoor recreation,racquet sports,tennis | raqueta de tenis | raquette de tennis | Tennisschläger | raquete de tênis | racchetta da tennis | теннисная ракетка | テニスラケット | 테니스 라켓 | مضرب تنس | ไม้เทนนิส | टेनिस रैकेट | vợt tennis | rakieta tenisowa
badminton racket | sports & outdoor recreation,racquet sports,badminton | raqueta de bádminton | raquette de badminton | Badmintonschläger | raquete de badminton | racchetta da badminton | ракетка для бадминтона | バドミントンラケット | 배드민턴 라켓 | مضرب ريشة | ไม้แบดมินตัน | बैडमिंटन रैकेट | vợt cầu lông | rakietka do badmintona
water bottle | sports & outdoor recreation,sports accessories,water bottles | botella de agua | gourde | Trinkflasche | garrafa de água | borraccia | бутылка для воды | ウォーターボトル | 물병 | زجاجة ماء | ขวดน้ำ | पानी की बोतल | bình nước | bidon
building blocks | toys, games & hobbies,building toys,blocks, bricks & sets | bloques de construcción | jeu de construction | Bausteine | blocos de montar | mattoncini | конструктор | ブロック おもちゃ | 블록 장난감 | مكعبات بناء | ตัวต่อ | बिल्डिंग ब्लॉक्स | đồ chơi xếp hình | klocki
doll | toys, games & hobbies,dolls & accessories,dolls | muñeca | poupée | Puppe | boneca | bambola | кукла | 人形 | 인형 | دمية | ตุ๊กตา | गुड़िया | búp bê | lalka
teddy bear | toys, games & hobbies,stuffed animals,teddy bears | oso de peluche | ours en peluche | Teddybär | urso de pelúcia | orsacchiotto | плюшевый мишка | テディベア | 곰인형 | دبدوب | ตุ๊กตาหมี | टेडी बियर | gấu bông | pluszowy miś
remote control car | toys, games & hobbies,remote control & play vehicles,rc cars | coche teledirigido | voiture télécommandée | ferngesteuertes Auto | carrinho de controle remoto | macchina telecomandata | радиоуправляемая машинка | ラジコンカー | rc카 | سيارة تحكم عن بعد | รถบังคับ | रिमोट कंट्रोल कार | xe điều khiển | samochód zdalnie sterowany
drone | toys, games & hobbies,remote control & play vehicles,drones | dron | drone | Drohne | drone | drone | квадрокоптер | ドローン | 드론 | طائرة درون | โดรน | ड्रोन | flycam | dron
jigsaw puzzle | toys, games & hobbies,puzzles,jigsaw puzzles | rompecabezas | puzzle | Puzzle | quebra-cabeça | puzzle | пазл | ジグソーパズル | 직소퍼즐 | بازل | จิ๊กซอว์ | जिगसॉ पहेली | tranh ghép hình | puzzle
rubik's cube | toys, games & hobbies,puzzles,brain teasers | cubo de rubik | cube magique | Zauberwürfel | cubo mágico | cubo di rubik | кубик рубика | ルービックキューブ | 큐브 | مكعب روبيك | รูบิค | रूबिक क्यूब | rubik | kostka rubika
board game | toys, games & hobbies,games,board games | juego de mesa | jeu de société | Brettspiel | jogo de tabuleiro | gioco da tavolo | настольная игра | ボードゲーム | 보드게임 | لعبة لوحية | บอร์ดเกม | बोर्ड गेम | board game | gra planszowa
playing cards | toys, games & hobbies,games,card games | baraja de cartas | jeu de cartes | Spielkarten | baralho | carte da gioco | игральные карты | トランプ | 트럼프 카드 | ورق لعب | ไพ่ | ताश के पत्ते | bộ bài | karty do gry
watercolor paints | toys, games & hobbies,arts, crafts & sewing,painting, drawing & art supplies | acuarelas | peinture aquarelle | Aquarellfarben | aquarela | acquerelli | акварельные краски | 水彩絵の具 | 수채화 물감 | ألوان مائية | สีน้ำ | वॉटरकलर पेंट | màu nước | farby akwarelowe
yarn | toys, games & hobbies,arts, crafts & sewing,knitting & crochet | ovillo de lana | pelote de laine | Strickgarn | novelo de lã | gomitolo di lana | пряжа | 毛糸 | 뜨개실 | خيوط صوف | ไหมพรม | - | len đan | włóczka
action figure | toys, games & hobbies,action figures & statues,action figures | figura de acción | figurine | Actionfigur | boneco de ação | action figure | фигурка | フィギュア | 피규어 | مجسم أكشن | ฟิกเกอร์ | एक्शन फिगर | mô hình nhân vật | figurka
kite | toys, games & hobbies,outdoor play,kites & flying toys | cometa | cerf-volant | Drachen | pipa | aquilone | воздушный змей | 凧 | 연 | طائرة ورقية | ว่าว | पतंग | diều | latawiec
dash cam | automotive parts & accessories,car electronics,dash cams | cámara para coche | caméra embarquée | Dashcam | câmera veicular | telecamera auto | видеорегистратор | ドライブレコーダー | 블랙박스 | كاميرا سيارة | กล้องติดรถยนต์ | डैश कैम | camera hành trình | kamera samochodowa
car phone holder | automotive parts & accessories,car electronics,phone mounts & holders | soporte móvil coche | support téléphone voiture | Handyhalterung Auto | suporte celular carro | supporto cellulare auto | держатель телефона в машину | 車載ホルダー | 차량용 거치대 | حامل جوال للسيارة | ที่วางมือถือในรถ | कार मोबाइल होल्डर | giá đỡ điện thoại ô tô | uchwyt samochodowy
car charger | automotive parts & accessories,car electronics,car chargers | cargador de coche | chargeur voiture | Kfz Ladegerät | carregador veicular | caricatore auto | автомобильное зарядное | カーチャージャー | 차량용 충전기 | شاحن سيارة | ที่ชาร์จในรถ | कार चार्जर | tẩu sạc ô tô | ładowarka samochodowa
car seat cover | automotive parts & accessories,interior accessories,seat covers | fundas de asiento coche | housse de siège auto | Autositzbezug | capa de banco automotivo | coprisedili auto | чехлы на сиденья | シートカバー | 카시트 커버 | غطاء مقعد السيارة | หุ้มเบาะรถยนต์ | कार सीट कवर | bọc ghế ô tô | pokrowce na fotele
car floor mats | automotive parts & accessories,interior accessories,floor mats | alfombrillas de coche | tapis de voiture | Autofußmatten | tapete automotivo | tappetini auto | автоковрики | フロアマット | 차량용 매트 | دواسات سيارة | พรมปูพื้นรถยนต์ | कार मैट | thảm lót sàn ô tô | dywaniki samochodowe
car air freshener | automotive parts & accessories,interior accessories,air fresheners | ambientador coche | désodorisant voiture | Autoduft | aromatizante automotivo | profumatore auto | ароматизатор для авто | 車用芳香剤 | 차량용 방향제 | معطر سيارة | น้ำหอมติดรถยนต์ | कार एयर फ्रेशनर | nước hoa ô tô | zapach samochodowy
car tire | automotive parts & accessories,tires & wheels,tires | neumático | pneu | Autoreifen | pneu | pneumatico | автошина | タイヤ | 타이어 | إطار سيارة | ยางรถยนต์ | कार टायर | lốp ô tô | opona
jump starter | automotive parts & accessories,tools & equipment,jump starters, battery chargers & portable power | arrancador de batería | booster batterie | Starthilfegerät | auxiliar de partida | avviatore batteria | пусковое устройство | ジャンプスターター | 점프스타터 | مشغل بطارية | - | - | bộ kích điện ô tô | booster rozruchowy
tire inflator | automotive parts & accessories,tools & equipment,tire inflators | inflador de neumáticos | gonfleur pneu | Reifenkompressor | compressor de ar portátil | compressore portatile | автомобильный компрессор | 電動空気入れ | 타이어 공기주입기 | منفاخ إطارات | ปั๊มลมรถยนต์ | टायर इन्फ्लेटर | bơm lốp ô tô | kompresor samochodowy
car wax | automotive parts & accessories,car care,washing, waxing & polishing | cera para coche | cire voiture | Autowachs | cera automotiva | cera auto | автовоск | カーワックス | 카왁스 | شمع سيارات | น้ำยาเคลือบสีรถ | कार वैक्स | xi đánh bóng ô tô | wosk samochodowy
motor oil | automotive parts & accessories,oils & fluids,motor oils | aceite de motor | huile moteur | Motoröl | óleo de motor | olio motore | моторное масло | エンジンオイル | 엔진오일 | زيت محرك | น้ำมันเครื่อง | इंजन ऑयल | dầu nhớt | olej silnikowy
motorcycle helmet | automotive parts & accessories,motorcycle & powersports,helmets | casco de moto | casque moto | Motorradhelm | capacete de moto | casco moto | мотошлем | バイク ヘルメット | 오토바이 헬멧 | خوذة دراجة نارية | หมวกกันน็อค | बाइक हेलमेट | mũ bảo hiểm | kask motocyklowy
dog food | pet supplies & pet care,dogs,food | pienso para perros | croquettes chien | Hundefutter | ração para cachorro | crocchette cane | корм для собак | ドッグフード | 강아지 사료 | طعام كلاب | อาหารสุนัข | कुत्ते का खाना | thức ăn cho chó | karma dla psa
dog leash | pet supplies & pet care,dogs,collars, harnesses & leashes | correa para perro | laisse chien | Hundeleine | guia para cachorro | guinzaglio | поводок для собак | 犬 リード | 강아지 목줄 | مقود كلب | สายจูงสุนัข | कुत्ते का पट्टा | dây dắt chó | smycz dla psa
dog bed | pet supplies & pet care,dogs,beds & furniture | cama para perro | panier pour chien | Hundebett | caminha de cachorro | cuccia per cani | лежанка для собаки | 犬用ベッド | 강아지 방석 | سرير كلب | ที่นอนสุนัข | कुत्ते का बिस्तर | ổ nệm cho chó | legowisko dla psa
dog toy | pet supplies & pet care,dogs,toys | juguete para perro | jouet pour chien | Hundespielzeug | brinquedo para cachorro | gioco per cani | игрушка для собак | 犬 おもちゃ | 강아지 장난감 | لعبة كلاب | ของเล่นสุนัข | कुत्ते का खिलौना | đồ chơi cho chó | zabawka dla psa
cat food | pet supplies & pet care,cats,food | comida para gatos | croquettes chat | Katzenfutter | ração para gato | cibo per gatti | корм для кошек | キャットフード | 고양이 사료 | طعام قطط | อาหารแมว | बिल्ली का खाना | thức ăn cho mèo | karma dla kota
cat litter | pet supplies & pet care,cats,litter & housebreaking | arena para gatos | litière pour chat | Katzenstreu | areia para gato | lettiera per gatti | наполнитель для кошачьего туалета | 猫砂 | 고양이 모래 | رمل قطط | ทรายแมว | बिल्ली का लिटर | cát vệ sinh cho mèo | żwirek dla kota
cat tree | pet supplies & pet care,cats,cat trees, condos & scratchers | rascador para gatos | arbre à chat | Kratzbaum | arranhador para gato | tiragraffi | когтеточка | キャットタワー | 캣타워 | شجرة قطط | คอนโดแมว | - | trụ cào móng mèo | drapak dla kota
aquarium | pet supplies & pet care,fish & aquatic pets,aquariums | acuario | aquarium | Aquarium | aquário | acquario | аквариум | 水槽 | 어항 | حوض سمك | ตู้ปลา | एक्वेरियम | bể cá | akwarium
fish food | pet supplies & pet care,fish & aquatic pets,food | comida para peces | nourriture poisson | Fischfutter | ração para peixe | mangime per pesci | корм для рыб | 魚のエサ | 물고기 사료 | طعام أسماك | อาหารปลา | मछली का खाना | thức ăn cho cá | pokarm dla ryb
bird cage | pet supplies & pet care,birds,cages & accessories | jaula para pájaros | cage à oiseaux | Vogelkäfig | gaiola para pássaros | gabbia per uccelli | клетка для птиц | 鳥かご | 새장 | قفص طيور | กรงนก | पिंजरा | lồng chim | klatka dla ptaków
ballpoint pen | office, school & stationery supplies,writing instruments,pens | bolígrafo | stylo bille | Kugelschreiber | caneta esferográfica | penna a sfera | шариковая ручка | ボールペン | 볼펜 | قلم حبر جاف | ปากกาลูกลื่น | बॉलपेन | bút bi | długopis
pencil | office, school & stationery supplies,writing instruments,pencils | lápiz | crayon à papier | Bleistift | lápis | matita | карандаш | 鉛筆 | 연필 | قلم رصاص | ดินสอ | पेंसिल | bút chì | ołówek
highlighter | office, school & stationery supplies,writing instruments,markers & highlighters | subrayador | surligneur | Textmarker | marca-texto | evidenziatore | текстовыделитель | 蛍光ペン | 형광펜 | قلم تحديد | ปากกาเน้นข้อความ | हाइलाइटर | bút dạ quang | zakreślacz
notebook | office, school & stationery supplies,paper products,notebooks & writing pads | cuaderno | cahier | Notizbuch | caderno | quaderno | тетрадь | ノート | 공책 | دفتر | สมุด | नोटबुक | vở | zeszyt
sticky notes | office, school & stationery supplies,paper products,sticky notes | notas adhesivas | post-it | Haftnotizen | bloco adesivo | foglietti adesivi | стикеры | 付箋 | 포스트잇 | أوراق لاصقة | กระดาษโน้ต | स्टिकी नोट्स | giấy nhớ | karteczki samoprzylepne
school backpack | office, school & stationery supplies,school supplies,school backpacks | mochila escolar | cartable | Schulranzen | mochila escolar | zaino scuola | школьный рюкзак | ランドセル | 책가방 | حقيبة مدرسية | กระเป๋านักเรียน | स्कूल बैग | balo đi học | plecak szkolny
pencil case | office, school & stationery supplies,school supplies,pencil cases | estuche | trousse | Federmäppchen | estojo | astuccio | пенал | 筆箱 | 필통 | مقلمة | กล่องดินสอ | पेंसिल बॉक्स | hộp bút | piórnik
calculator | office, school & stationery supplies,school supplies,calculators | calculadora | calculatrice | Taschenrechner | calculadora | calcolatrice | калькулятор | 電卓 | 계산기 | آلة حاسبة | เครื่องคิดเลข | कैलकुलेटर | máy tính cầm tay | kalkulator
office chair | office, school & stationery supplies,office furniture,office chairs | silla de oficina | chaise de bureau | Bürostuhl | cadeira de escritório | sedia da ufficio | офисное кресло | オフィスチェア | 사무용 의자 | كرسي مكتب | เก้าอี้สำนักงาน | ऑफिस चेयर | ghế văn phòng | krzesło biurowe
desk | office, school & stationery supplies,office furniture,desks | escritorio | bureau | Schreibtisch | escrivaninha | scrivania | письменный стол | デスク | 책상 | مكتب خشب | โต๊ะทำงาน | डेस्क | bàn làm việc | biurko
stapler | office, school & stationery supplies,office supplies,staplers & punches | grapadora | agrafeuse | Hefter | grampeador | cucitrice | степлер | ホッチキス | 스테이플러 | دباسة | แม็กเย็บกระดาษ | स्टेपलर | dập ghim | zszywacz
glue stick | office, school & stationery supplies,office supplies,tape, glue & adhesives | barra de pegamento | bâton de colle | Klebestift | cola bastão | colla stick | клей-карандаш | スティックのり | 딱풀 | صمغ أصابع | กาวแท่ง | ग्लू स्टिक | keo dán khô | klej w sztyfcie
scissors | office, school & stationery supplies,office supplies,scissors | tijeras | ciseaux | Schere | tesoura | forbici | ножницы | はさみ | 가위 | مقص | กรรไกร | कैंची | kéo | nożyczki
ink cartridge | office, school & stationery supplies,printers, ink & toner,ink cartridges | cartucho de tinta | cartouche d'encre | Druckerpatrone | cartucho de tinta | cartuccia inchiostro | картридж для принтера | インクカートリッジ | 잉크 카트리지 | حبر طابعة | ตลับหมึก | इंक कार्ट्रिज | hộp mực in | tusz do drukarki
printer | office, school & stationery supplies,printers, ink & toner,printers | impresora | imprimante | Drucker | impressora | stampante | принтер | プリンター | 프린터 | طابعة | เครื่องพิมพ์ | प्रिंटर | máy in | drukarka
"""

# Brands by category prefix; a concept takes the list of its longest matching prefix.
BRANDS = {
    "clothing, shoes & accessories": ["Zara", "H&M", "Shein", "Uniqlo", "Mango", "Nike", "Adidas"],
    "clothing, shoes & accessories,men,men's shoes": ["Nike", "Adidas", "Puma", "Skechers", "Clarks", "Timberland"],
    "clothing, shoes & accessories,women,women's shoes": ["Nike", "Skechers", "Steve Madden", "Zara", "Clarks", "Aldo"],
    "clothing, shoes & accessories,men,men's clothing": ["Levi's", "Uniqlo", "H&M", "Tommy Hilfiger", "The North Face"],
    "clothing, shoes & accessories,fashion accessories": ["Ray-Ban", "Casio", "Fossil", "Tommy Hilfiger", "Guess"],
    "clothing, shoes & accessories,jewelry": ["Pandora", "Swarovski", "Guess", "Fossil"],
    "clothing, shoes & accessories,baby": ["Carter's", "H&M", "Zara", "Gerber"],
    "consumer electronics": ["Samsung", "Xiaomi", "Apple", "Huawei", "Sony"],
    "consumer electronics,cell phones & accessories": [
        "Samsung", "Xiaomi", "Apple", "Anker", "Baseus", "Ugreen", "Spigen",
    ],
    "consumer electronics,computers & tablets": ["Lenovo", "HP", "Dell", "Asus", "Apple", "Samsung"],
    "consumer electronics,computers & tablets,keyboards, mice & accessories": ["Logitech", "Razer", "HP", "Redragon"],
    "consumer electronics,computers & tablets,data storage": ["SanDisk", "Kingston", "Seagate", "Samsung", "WD"],
    "consumer electronics,computers & tablets,networking": ["TP-Link", "Xiaomi", "Asus", "Netgear"],
    "consumer electronics,audio": ["Sony", "JBL", "Bose", "Xiaomi", "Samsung", "Anker"],
    "consumer electronics,tv & video": ["Samsung", "LG", "Sony", "TCL", "Xiaomi"],
    "consumer electronics,cameras & photo": ["Canon", "Nikon", "Sony", "Fujifilm", "Manfrotto"],
    "consumer electronics,wearable technology": ["Apple", "Samsung", "Xiaomi", "Huawei", "Garmin", "Amazfit"],
    "consumer electronics,video games": ["Sony", "Nintendo", "Microsoft", "8BitDo"],
    "home improvement, furniture & garden": ["IKEA", "Zara Home", "Xiaomi"],
    "home improvement, furniture & garden,kitchen": ["Tefal", "IKEA", "WMF", "Zwilling", "Tramontina", "Stanley"],
    "home improvement, furniture & garden,kitchen,small appliances": [
        "Philips", "Xiaomi", "Cecotec", "Moulinex", "De'Longhi", "Ninja",
    ],
    "home improvement, furniture & garden,bedding": ["IKEA", "Zara Home", "Bedsure", "Emma"],
    "home improvement, furniture & garden,bath": ["IKEA", "Zara Home", "Utopia Towels"],
    "home improvement, furniture & garden,home decor": ["IKEA", "Zara Home", "H&M Home"],
    "home improvement, furniture & garden,storage & organization": ["IKEA", "Songmics", "Iris Ohyama"],
    "home improvement, furniture & garden,furniture": ["IKEA", "Vasagle", "Songmics"],
    "home improvement, furniture & garden,lighting": ["Philips", "IKEA", "Xiaomi", "Govee"],
    "home improvement, furniture & garden,garden": ["Gardena", "Bosch", "Fiskars", "Karcher"],
    "home improvement, furniture & garden,household appliances": ["Dyson", "Xiaomi", "Roborock", "Rowenta", "Philips"],
    "home improvement, furniture & garden,cleaning supplies": ["Vileda", "Spontex", "O-Cedar"],
    "grocery & gourmet food": ["Nestle", "Carrefour", "Kirkland"],
    "grocery & gourmet food,pantry staples,flour, baking and cooking": [
        "Dr. Oetker", "King Arthur", "Wilton", "Gold Medal",
    ],
    "grocery & gourmet food,pantry staples,coffee, tea & cocoa": [
        "Nescafe", "Lavazza", "Lipton", "Twinings", "Starbucks", "Nesquik",
    ],
    "grocery & gourmet food,pantry staples,snacks": ["Lay's", "Pringles", "Oreo", "Blue Diamond", "Doritos"],
    "grocery & gourmet food,pantry staples,pasta, rice & grains": ["Barilla", "De Cecco", "Uncle Ben's"],
    "grocery & gourmet food,pantry staples,breakfast cereals": ["Quaker", "Kellogg's"],
    "grocery & gourmet food,pantry staples,oils, vinegars & sauces": [
        "Kikkoman", "Bertolli", "Carbonell", "Lee Kum Kee",
    ],
    "grocery & gourmet food,pantry staples,herbs, spices & seasonings": ["McCormick", "Ducros", "Schwartz"],
    "grocery & gourmet food,pantry staples,jams, honey & spreads": ["Skippy", "Nutella", "Bonne Maman"],
    "grocery & gourmet food,pantry staples,candy & chocolate": ["Lindt", "Haribo", "Milka", "Trolli"],
    "grocery & gourmet food,beverages": ["Tropicana", "Evian", "Red Bull", "Monster", "Coca-Cola"],
    "beauty, health & wellness,makeup": ["L'Oreal", "Maybelline", "MAC", "NYX", "Revlon", "Essence"],
    "beauty, health & wellness,skin care": ["Nivea", "La Roche-Posay", "CeraVe", "Neutrogena", "Innisfree"],
    "beauty, health & wellness,hair care": ["L'Oreal", "Pantene", "Head & Shoulders", "Dyson", "Philips", "Remington"],
    "beauty, health & wellness,personal care": ["Oral-B", "Colgate", "Philips", "Braun", "Gillette"],
    "beauty, health & wellness,fragrances": ["Chanel", "Dior", "Calvin Klein", "Carolina Herrera"],
    "beauty, health & wellness,health care": ["Centrum", "Omron", "Braun", "Nature Made"],
    "sports & outdoor recreation": ["Decathlon", "Nike", "Adidas", "Under Armour"],
    "sports & outdoor recreation,fitness": ["Decathlon", "Domyos", "Reebok", "Bowflex"],
    "sports & outdoor recreation,running": ["Nike", "Adidas", "Asics", "New Balance", "Under Armour"],
    "sports & outdoor recreation,camping & hiking": ["Coleman", "Quechua", "The North Face", "Petzl", "Osprey"],
    "sports & outdoor recreation,cycling": ["Giant", "Trek", "Btwin", "Specialized"],
    "sports & outdoor recreation,team sports": ["Adidas", "Nike", "Puma", "Wilson", "Spalding", "Molten"],
    "sports & outdoor recreation,water sports": ["Speedo", "Arena"],
    "sports & outdoor recreation,fishing": ["Shimano", "Daiwa", "Abu Garcia"],
    "sports & outdoor recreation,racquet sports": ["Wilson", "Babolat", "Head", "Yonex"],
    "sports & outdoor recreation,sports accessories": ["Stanley", "Nalgene", "Hydro Flask", "Decathlon"],
    "toys, games & hobbies": ["Mattel", "Hasbro", "Melissa & Doug"],
    "toys, games & hobbies,building toys": ["LEGO", "Mega Bloks"],
    "toys, games & hobbies,dolls & accessories": ["Barbie", "Mattel", "LOL Surprise"],
    "toys, games & hobbies,stuffed animals": ["Jellycat", "Steiff", "Squishmallows"],
    "toys, games & hobbies,remote control & play vehicles": ["DJI", "Hot Wheels", "Holy Stone"],
    "toys, games & hobbies,puzzles": ["Ravensburger", "Rubik's", "GAN"],
    "toys, games & hobbies,games": ["Hasbro", "Bicycle", "Monopoly"],
    "toys, games & hobbies,arts, crafts & sewing": ["Faber-Castell", "Winsor & Newton", "Drops"],
    "toys, games & hobbies,action figures & statues": ["Marvel", "Bandai", "Funko"],
    "automotive parts & accessories": ["Bosch", "Baseus", "Xiaomi", "Armor All"],
    "automotive parts & accessories,car electronics": ["70mai", "Garmin", "Baseus", "Anker", "Vantrue"],
    "automotive parts & accessories,tires & wheels": ["Michelin", "Bridgestone", "Pirelli", "Continental"],
    "automotive parts & accessories,tools & equipment": ["NOCO", "Bosch", "Xiaomi", "Michelin"],
    "automotive parts & accessories,car care": ["Meguiar's", "Turtle Wax", "Armor All"],
    "automotive parts & accessories,oils & fluids": ["Castrol", "Shell", "Mobil 1", "Total"],
    "automotive parts & accessories,motorcycle & powersports": ["AGV", "Shoei", "LS2", "HJC"],
    "pet supplies & pet care": ["Trixie", "Purina", "Petstages"],
    "pet supplies & pet care,dogs": ["Pedigree", "Royal Canin", "Purina", "Kong", "Trixie"],
    "pet supplies & pet care,cats": ["Whiskas", "Royal Canin", "Purina", "Catsan", "Trixie"],
    "pet supplies & pet care,fish & aquatic pets": ["Tetra", "JBL", "Fluval"],
    "pet supplies & pet care,birds": ["Trixie", "Vitakraft"],
    "office, school & stationery supplies": ["Deli", "Staples", "Maped"],
    "office, school & stationery supplies,writing instruments": [
        "BIC", "Pilot", "Stabilo", "Faber-Castell", "Staedtler",
    ],
    "office, school & stationery supplies,paper products": ["Moleskine", "Post-it", "Oxford"],
    "office, school & stationery supplies,school supplies": ["Casio", "JanSport", "Herlitz", "Smiggle"],
    "office, school & stationery supplies,office furniture": ["IKEA", "Songmics", "Flexispot"],
    "office, school & stationery supplies,printers, ink & toner": ["HP", "Canon", "Epson", "Brother"],
}

# Marketplace title vocabulary by top-level category: (attributes, sizes, how often a model name appears).
TITLE_WORDS = {
    "clothing, shoes & accessories": (
        ["Cotton", "Breathable", "Slim Fit", "Casual", "Waterproof", "Genuine Leather", "Lightweight", "Summer",
         "Winter", "Fashion", "Black", "White", "Navy Blue", "Beige", "Grey", "Pink"],
        ["Size 38", "Size 42", "EU 40", "S", "M", "L", "XL", "S-XXL", "One Size"], 0.1),
    "consumer electronics": (
        ["USB-C", "Fast Charging", "Wireless", "Bluetooth", "Portable", "Waterproof IP67", "Long Battery Life",
         "Compatible with iPhone & Android", "2024 New", "High Speed", "Original"],
        ["Black", "White", "Silver", "Global Version", "2024 Model", "1 Pack", "2 Pack"], 0.9),
    "home improvement, furniture & garden": (
        ["Stainless Steel", "Non-Stick", "Cotton", "Microfiber", "Modern", "Nordic Style", "Large Capacity",
         "Easy Clean", "Wooden", "Foldable", "Energy Saving", "Dishwasher Safe"],
        ["Large", "Medium", "Small", "Set of 2", "Set of 4", "White", "Grey", "1 Pcs"], 0.2),
    "grocery & gourmet food": (
        ["Organic", "Natural", "Gluten Free", "Premium", "Classic", "Family Pack", "No Added Sugar", "Imported"],
        ["500g", "1kg", "250g", "200g", "Pack of 6", "Pack of 3", "Value Pack", "Family Size"], 0.0),
    "beauty, health & wellness": (
        ["Long Lasting", "Waterproof", "Hydrating", "For Sensitive Skin", "Vitamin C", "Matte", "SPF 50",
         "Travel Size", "Professional", "Unisex"],
        ["Pack of 2", "Pack of 3", "Travel Size", "Value Set", "1 Pcs", "New Formula"], 0.3),
    "sports & outdoor recreation": (
        ["Non-Slip", "Lightweight", "Breathable", "Professional", "Adjustable", "Waterproof", "For Beginners",
         "Outdoor", "Portable", "Anti-Fog"],
        ["S", "M", "L", "Adult", "Black", "Blue", "1 Pcs", "2024 Edition"], 0.5),
    "toys, games & hobbies": (
        ["Educational", "for Kids 3+", "STEM", "Gift for Boys and Girls", "Rechargeable", "Classic", "Collectible"],
        ["Ages 3+", "Ages 6+", "Ages 8-12", "Gift Box", "Multicolor", "Large"], 0.4),
    "automotive parts & accessories": (
        ["Universal Fit", "12V", "Waterproof", "Heavy Duty", "Easy Install", "For Car SUV Truck", "Fast Charging",
         "Night Vision"],
        ["1 Pcs", "2 Pack", "Set of 4", "Black", "2024 Model"], 0.5),
    "pet supplies & pet care": (
        ["Durable", "Washable", "Natural", "Premium", "Non-Toxic", "Indoor", "Adult", "Grain Free", "Easy Clean"],
        ["S", "M", "L", "XL", "Pack of 3", "Value Pack"], 0.1),
    "office, school & stationery supplies": (
        ["Assorted Colors", "Black Ink", "A4", "A5", "Ergonomic", "Refillable", "Quick Dry", "Office & School",
         "Adjustable Height"],
        ["Pack of 10", "Pack of 12", "Set of 24", "1 Pcs", "Black", "Blue"], 0.3),
}
MODEL_WORDS = ["Pro", "Max", "Air", "Lite", "Plus", "Ultra", "Mini", "X", "S", "GT", "Neo", "Classic", "Sport"]

# Query modifiers: "{}" is the product name. English templates double as the translation.
MODIFIERS = {
    "cheap": {"en": "cheap {}", "es": "{} barato", "fr": "{} pas cher", "de": "{} günstig", "pt": "{} barato",
              "it": "{} economico", "ru": "{} недорого", "ja": "{} 安い", "ko": "저렴한 {}", "ar": "{} رخيص",
              "th": "{} ราคาถูก", "hi": "सस्ता {}", "vi": "{} giá rẻ", "pl": "{} tanio"},
    "women": {"en": "{} for women", "es": "{} para mujer", "fr": "{} femme", "de": "{} damen", "pt": "{} feminino",
              "it": "{} donna", "ru": "{} женские", "ja": "レディース {}", "ko": "여성 {}", "ar": "{} نسائي",
              "th": "{} ผู้หญิง", "hi": "महिलाओं के लिए {}", "vi": "{} nữ", "pl": "{} damskie"},
    "men": {"en": "men's {}", "es": "{} para hombre", "fr": "{} homme", "de": "{} herren", "pt": "{} masculino",
            "it": "{} uomo", "ru": "{} мужские", "ja": "メンズ {}", "ko": "남성 {}", "ar": "{} رجالي",
            "th": "{} ผู้ชาย", "hi": "पुरुषों के लिए {}", "vi": "{} nam", "pl": "{} męskie"},
    "kids": {"en": "{} for kids", "es": "{} para niños", "fr": "{} enfant", "de": "{} kinder", "pt": "{} infantil",
             "it": "{} bambino", "ru": "{} детские", "ja": "キッズ {}", "ko": "아동 {}", "ar": "{} للأطفال",
             "th": "{} เด็ก", "hi": "बच्चों के लिए {}", "vi": "{} trẻ em", "pl": "{} dla dzieci"},
    "black": {"en": "black {}", "es": "{} negro", "fr": "{} noir", "de": "{} schwarz", "pt": "{} preto",
              "it": "{} nero", "ru": "черный {}", "ja": "{} 黒", "ko": "블랙 {}", "ar": "{} أسود", "th": "{} สีดำ",
              "hi": "काला {}", "vi": "{} màu đen", "pl": "{} czarny"},
    "white": {"en": "white {}", "es": "{} blanco", "fr": "{} blanc", "de": "{} weiß", "pt": "{} branco",
              "it": "{} bianco", "ru": "белый {}", "ja": "{} 白", "ko": "화이트 {}", "ar": "{} أبيض",
              "th": "{} สีขาว", "hi": "सफेद {}", "vi": "{} màu trắng", "pl": "{} biały"},
    "red": {"en": "red {}", "es": "{} rojo", "fr": "{} rouge", "de": "{} rot", "pt": "{} vermelho", "it": "{} rosso",
            "ru": "красный {}", "ja": "{} 赤", "ko": "레드 {}", "ar": "{} أحمر", "th": "{} สีแดง", "hi": "लाल {}",
            "vi": "{} màu đỏ", "pl": "{} czerwony"},
    "large": {"en": "large {}", "es": "{} grande", "fr": "{} grand", "de": "{} groß", "pt": "{} grande",
              "it": "{} grande", "ru": "большой {}", "ja": "大型 {}", "ko": "대형 {}", "ar": "{} كبير",
              "th": "{} ขนาดใหญ่", "hi": "बड़ा {}", "vi": "{} cỡ lớn", "pl": "{} duży"},
    "mini": {"en": "mini {}", "es": "mini {}", "fr": "mini {}", "de": "mini {}", "pt": "mini {}", "it": "mini {}",
             "ru": "мини {}", "ja": "ミニ {}", "ko": "미니 {}", "ar": "{} صغير", "th": "{} มินิ", "hi": "मिनी {}",
             "vi": "{} mini", "pl": "mini {}"},
    "original": {"en": "original {}", "es": "{} original", "fr": "{} original", "de": "{} original",
                 "pt": "{} original", "it": "{} originale", "ru": "{} оригинал", "ja": "{} 正規品", "ko": "{} 정품",
                 "ar": "{} أصلي", "th": "{} ของแท้", "hi": "ओरिजिनल {}", "vi": "{} chính hãng", "pl": "{} oryginalny"},
}
# Which modifiers make sense for a top-level category (gendered ones are further matched to the path).
MODIFIERS_BY_TOP = {
    "clothing, shoes & accessories": ["cheap", "women", "men", "kids", "black", "white", "red", "original"],
    "consumer electronics": ["cheap", "black", "white", "mini", "original"],
    "home improvement, furniture & garden": ["cheap", "large", "mini", "black", "white", "red"],
    "grocery & gourmet food": ["cheap", "large", "original"],
    "beauty, health & wellness": ["cheap", "women", "men", "red", "mini", "original"],
    "sports & outdoor recreation": ["cheap", "women", "men", "kids", "black", "red", "large"],
    "toys, games & hobbies": ["cheap", "kids", "large", "mini", "original"],
    "automotive parts & accessories": ["cheap", "black", "original", "mini"],
    "pet supplies & pet care": ["cheap", "large", "mini"],
    "office, school & stationery supplies": ["cheap", "black", "red", "large", "mini"],
}

LATIN_LANGS = {"en", "es", "fr", "de", "pt", "it", "vi", "pl"}
TYPO_LANGS = LATIN_LANGS | {"ru"}
ACCENT_DROP = {"es": 0.15, "fr": 0.15, "de": 0.15, "pt": 0.15, "it": 0.15, "pl": 0.2, "vi": 0.3}
UPPER_WORDS = {"usb", "led", "tv", "rc"}

# Language mix: English is the largest single language, the others share the rest evenly.
TRAIN_LANG_WEIGHTS = {"en": 0.16, **{lang: 0.07 for lang in LANGS if lang != DEV_ONLY_LANG}}
DEV_LANG_WEIGHTS = {**{lang: w * 0.9 for lang, w in TRAIN_LANG_WEIGHTS.items()}, DEV_ONLY_LANG: 0.10}



@dataclass(frozen=True)
class Shape:
    """A task's row shape, set to what the real labelled data measures (`--stats` prints it for any folder)."""

    pairs_per_query: tuple  # (counts, weights): how many targets one query gets
    positive_rate: float  # before label noise
    query_share: tuple  # (a, b) of the Beta law a query's positive share is drawn from; None: every query alike
    modifier_rate: float  # queries with a modifier ("cheap", "for women", ...)
    brand_rate: float  # queries naming a brand
    easy_negatives: float  # share of negatives from another top-level category; the rest are hard


SHAPES = {
    # real QC: 1.1 pairs per query (max 5), 68% positive, queries ~16 characters
    "QC": Shape(((1, 2, 3, 4, 5), (91, 6.5, 1.7, 0.5, 0.3)), 0.705, None, 0.45, 0.3, 0.5),
    # real QI: 6.3 titles per query (1-15), 46% positive, the share of relevant titles of a query spread from
    # none to all, queries ~19 characters; a query's candidate titles are mostly from its own area
    "QI": Shape((tuple(range(1, 16)), (11, 8, 7, 6, 7, 9, 11, 11, 10, 8, 5, 3, 1.6, 0.6, 0.2)), 0.455, (1.0, 1.15),
                0.65, 0.6, 0.1),
}
LABEL_NOISE = 0.03
HELD_OUT_CATEGORY_SHARE = 0.10




def split_levels(path: str) -> list[str]:
    """Category levels: split on "," but not on ", " (a comma inside a level name is followed by a space)."""
    return re.split(r",(?! )", path)


@dataclass(frozen=True)
class Concept:
    name: str
    path: str
    names: dict  # language -> product name ("en" included)
    brands: tuple

    @property
    def top(self) -> str:
        return split_levels(self.path)[0]


@dataclass
class Query:
    text: str
    language: str
    translation: str | None  # None: the row carries no translated_query key
    brand: str | None


def parse_lexicon() -> list[Concept]:
    concepts = []
    for line in LEXICON.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 2 + len(LANGS):
            raise ValueError(f"lexicon line has {len(cells)} cells, expected {2 + len(LANGS)}: {line}")
        name, path, *translations = cells
        names = {"en": name, **{lang: t for lang, t in zip(LANGS, translations) if t != "-"}}
        concepts.append(Concept(name, path, names, tuple(_brands_for(path))))
    return concepts


def _brands_for(path: str) -> list[str]:
    best = max((p for p in BRANDS if path == p or path.startswith(p + ",") and path[len(p) + 1] != " "), key=len)
    return BRANDS[best]


def _query_brand(brand: str) -> str:
    """How people type a brand: lower case, no apostrophes or dots (L'Oreal -> loreal)."""
    return brand.lower().replace("'", "").replace(".", "")


def _strip_accents(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D").replace("ł", "l").replace("Ł", "L")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _typo(rng: random.Random, text: str) -> str:
    """Drop or swap one letter inside a longer word."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w, j = words[i], rng.randrange(1, len(words[i]) - 1)
    words[i] = w[:j] + w[j + 1:] if rng.random() < 0.5 else w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _modifier_choices(concept: Concept) -> list[str]:
    levels = split_levels(concept.path)
    choices = MODIFIERS_BY_TOP[concept.top]
    if concept.top == "clothing, shoes & accessories":  # a gendered query must match a gendered path
        choices = [m for m in choices if m not in ("women", "men") or m in levels]
        if "men" in levels or "women" in levels or "baby" in levels:
            choices = [m for m in choices if m != "kids"]
    return choices


def _imperfect(rng: random.Random, english: str, concept: Concept, lang: str) -> str:
    """Machine translation gone slightly wrong: odd word order, a word left untranslated, a word lost."""
    words = english.split()
    kind = rng.choice(["order", "untranslated", "dropped"])
    if kind == "order" and len(words) > 1:
        return " ".join(words[1:] + words[:1])
    if kind == "dropped" and len(words) > 2:
        del words[rng.randrange(len(words))]
        return " ".join(words)
    return english.replace(concept.name.split()[-1], concept.names[lang].split()[0], 1)


def make_query(rng: random.Random, concept: Concept, lang: str, shape: Shape) -> Query:
    """A short noisy search query for `concept` in `lang`, and its English rendering."""
    native, english = concept.names[lang], concept.name
    text, mod_lang = native, lang
    mixed = lang != "en" and rng.random() < 0.12  # code-mixing: one English word in a native query
    if mixed and rng.random() < 0.5:
        text = english  # English product name, native modifier
    elif mixed:
        mod_lang = "en"  # native product name, English modifier
    if mixed or rng.random() < shape.modifier_rate:
        modifier = rng.choice(_modifier_choices(concept))
        text = MODIFIERS[modifier][mod_lang].format(text)
        english = MODIFIERS[modifier]["en"].format(english)
    brand = rng.choice(concept.brands) if rng.random() < shape.brand_rate else None
    if brand:
        qb = _query_brand(brand)
        first = rng.random() < 0.5
        text, english = (f"{qb} {text}", f"{qb} {english}") if first else (f"{text} {qb}", f"{english} {qb}")
    if len(text.split()) > 5:  # queries stay short: fall back to the bare name (plus brand if it fits)
        text, english = native, concept.name
        if brand and len(native.split()) < 5:
            text, english = f"{_query_brand(brand)} {native}", f"{_query_brand(brand)} {concept.name}"
        else:
            brand = None

    typo = False
    if lang in TYPO_LANGS and rng.random() < 0.08:
        text, typo = _typo(rng, text), True
    if rng.random() < ACCENT_DROP.get(lang, 0.0):
        text = _strip_accents(text)
    r = rng.random()
    if r < 0.04 and lang in TYPO_LANGS:
        text = " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    elif r < 0.06 and lang in TYPO_LANGS:
        text = text.upper()
    if rng.random() < 0.05:
        text = rng.choice([f" {text}", f"{text} ", text.replace(" ", "  ", 1)])

    if lang == "en":
        return Query(text, lang, text, brand)
    r = rng.random()
    if r < 0.05:
        translation = None
    elif r < 0.10:
        translation = ""
    elif typo and rng.random() < 0.3:
        translation = text.strip()  # the translator gave up on the misspelt query
    elif rng.random() < 0.08:
        translation = _imperfect(rng, english, concept, lang)
    else:
        translation = english
    return Query(text, lang, translation, brand)


def _title_case(text: str) -> str:
    return " ".join(w.upper() if w in UPPER_WORDS else w[:1].upper() + w[1:] for w in text.split())


def make_title(rng: random.Random, concept: Concept, lang: str = "en", brand: str | None = None) -> str:
    """A marketplace product title for `concept`; in `lang` (brand and specs stay English) when given."""
    attrs, sizes, model_rate = TITLE_WORDS[concept.top]
    brand = brand or rng.choice(concept.brands)
    model = f"{rng.choice(MODEL_WORDS)} {rng.randint(2, 99)}" if rng.random() < model_rate else None
    picked = rng.sample(attrs, rng.randint(3, 4))  # real titles run long (~69 characters)
    specs = " ".join(rng.sample(sizes, rng.randint(1, 2)))
    levels = split_levels(concept.path)
    audience = {"men": "Men's", "women": "Women's", "baby": "Baby"}
    who = next((audience[level] for level in levels if level in audience), None)
    if lang != "en" and lang in concept.names:
        name = concept.names[lang]
        name = name[:1].upper() + name[1:] if lang in LATIN_LANGS else name
        parts = [brand, name, model, *picked[:3], specs]
    else:
        parts = [brand, model, who, _title_case(concept.name), *picked, specs]
    return " ".join(p for p in parts if p)




@dataclass
class Split:
    """What one file may draw on: its concepts (queries and targets) and its language mix."""

    concepts: list
    lang_weights: dict
    labelled: bool = True

    def __post_init__(self):
        self.by_lang = {lang: [c for c in self.concepts if lang in c.names] for lang in self.lang_weights}
        self.paths = sorted({c.path for c in self.concepts})
        self.langs = sorted(self.lang_weights)
        self.weights = [self.lang_weights[lang] for lang in self.langs]


def _negative(rng: random.Random, pool: list, key, exclude, easy_share: float):
    """Pick a negative from `pool` (key(x) = (top level, parent, identity)): `easy_share` easy (another top level),
    the rest hard (a sibling under the same parent, or anything under the same top level); `exclude` is the
    positive's key."""
    def easy(x):
        return key(x)[0] != exclude[0]

    def same_top(x):
        return key(x)[0] == exclude[0]

    def same_parent(x):
        return key(x)[1] == exclude[1]

    r = rng.random()
    hard = (r - easy_share) / (1 - easy_share)
    tiers = [easy] if r < easy_share else [same_parent, same_top, easy] if hard < 0.6 else [same_top, easy]
    for tier in tiers:
        candidates = [x for x in pool if tier(x) and key(x)[2] != exclude[2]]
        if candidates:
            return rng.choice(candidates)
    raise ValueError("no negative candidate")


def _path_key(path: str):
    """(top level, parent, leaf path) of a category path."""
    levels = split_levels(path)
    return levels[0], ",".join(levels[:-1]), path


def _wording(query: Query) -> tuple:
    return query.language, " ".join(query.text.lower().split())


def _sample_rows(rng, split: Split, n: int, used: set, shape: Shape, make_target) -> list[dict]:
    """Rows for one file, query by query: a wording not in `used` (so no query recurs within or across the files
    of a task, as the real test side holds whole queries apart), then as many targets as `shape` draws for it."""
    rows, positives, misses = [], 0, 0
    while len(rows) < n:
        if misses > 1000:
            raise SystemExit(f"the lexicon has too few new query wordings for {n} rows: use fewer rows")
        lang = rng.choices(split.langs, split.weights)[0]
        concept = rng.choice(split.by_lang[lang])
        query = next((q for q in (make_query(rng, concept, lang, shape) for _ in range(20))
                      if _wording(q) not in used), None)
        if query is None:  # this concept has run out of new wordings in this language
            misses += 1
            continue
        used.add(_wording(query))
        share = rng.betavariate(*shape.query_share) if shape.query_share else shape.positive_rate
        targets = set()
        for _ in range(rng.choices(*shape.pairs_per_query)[0]):
            rate = positives / len(rows) if rows else shape.positive_rate  # steer towards the task's rate
            label = int(rng.random() < min(0.95, max(0.05, share + 5 * (shape.positive_rate - rate))))
            target = make_target(rng, query, concept, label)
            if target in targets and label:  # QC has one relevant path per query: a second positive turns negative
                label, target = 0, make_target(rng, query, concept, 0)
            if target in targets or len(rows) >= n:
                continue
            targets.add(target)
            rows.append({"language": lang, "query": query, "target": target, "label": label})
            positives += label
    return rows


def make_qc_rows(rng: random.Random, split: Split, n: int, used: set) -> list[dict]:
    shape = SHAPES["QC"]

    def target(rng, query, concept, label):
        if label:
            return concept.path
        return _negative(rng, split.paths, _path_key, _path_key(concept.path), shape.easy_negatives)

    return _sample_rows(rng, split, n, used, shape, target)


def make_qi_rows(rng: random.Random, split: Split, n: int, used: set) -> list[dict]:
    shape = SHAPES["QI"]

    def target(rng, query, concept, label):
        other = concept
        if not label:
            key = lambda c: (*_path_key(c.path)[:2], c.name)  # noqa: E731
            other = _negative(rng, split.concepts, key, key(concept), shape.easy_negatives)
        brand = None
        if query.brand and query.brand in other.brands and (label or rng.random() < 0.7):
            brand = query.brand  # the positive carries the brand asked for; some negatives do too
        lang = query.language if rng.random() < 0.2 else "en"
        return make_title(rng, other, lang, brand)

    return _sample_rows(rng, split, n, used, shape, target)


def _edge_rows(rng: random.Random, rows: list, n_empty: int, n_null_target: int) -> list:
    """Rows the loader must drop and count: whitespace-only queries, null targets (JSON null)."""
    out = []
    for blank in ["", " ", "   ", "\t", "\u3000"][:n_empty]:
        row = dict(rng.choice(rows))
        row["query"] = Query(blank, row["language"], rng.choice([None, ""]), None)
        out.append(row)
    for _ in range(n_null_target):
        row = dict(rng.choice(rows))
        row["target"] = None
        out.append(row)
    return out


def to_records(rng: random.Random, rows: list, target_field: str, labelled: bool, noise: float) -> list[dict]:
    """Shuffle, flip `noise` of the labels, number the rows and lay out the fields in the competition's order."""
    rows = list(rows)
    rng.shuffle(rows)
    records = []
    for i, row in enumerate(rows, start=1):
        record = {"id": i, "language": row["language"], "origin_query": row["query"].text,
                  target_field: row["target"]}
        if labelled:
            record["label"] = 1 - row["label"] if rng.random() < noise else row["label"]
        if row["query"].translation is not None:
            record["translated_query"] = row["query"].translation
        records.append(record)
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def shape_table(folder: Path) -> str:
    """The shape of the files in `folder` as a Markdown table, on the rows the loader keeps (a query and a target):
    pairs per query (a query is its language and text), mean characters, positive share."""
    lines = ["| file | rows | queries | pairs per query (max) | query chars | target chars | positive |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for path in sorted(folder.glob("*_Q[CI].txt"), key=lambda p: (p.name[-6:], "train dev test".find(p.name[:3]))):
        field = "category_path" if path.name.endswith("QC.txt") else "item_title"
        with open(path, encoding="utf-8") as f:
            records = [r for r in map(json.loads, f) if r["origin_query"].strip() and r[field]]
        per_query = {}
        for r in records:
            key = (r["language"], r["origin_query"])
            per_query[key] = per_query.get(key, 0) + 1
        labels = [r["label"] for r in records if "label" in r]
        positive = f"{sum(labels) / len(labels):.1%}" if labels else "-"
        lines.append(f"| `{path.name}` | {len(records)} | {len(per_query)} | {len(records) / len(per_query):.2f} "
                     f"({max(per_query.values())}) | {sum(len(q) for _, q in per_query) / len(per_query):.1f} | "
                     f"{sum(len(r[field]) for r in records) / len(records):.1f} | {positive} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/sample", help="output folder (default: data/sample)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--train", type=int, default=3000, help="rows per training file")
    parser.add_argument("--dev", type=int, default=1000, help="rows per dev file")
    parser.add_argument("--test", type=int, default=200, help="rows per test file")
    parser.add_argument("--stats", metavar="FOLDER", help="print the shape of the files in FOLDER and write nothing")
    args = parser.parse_args(argv)
    if args.stats:
        print(shape_table(Path(args.stats)))
        return
    rng = random.Random(args.seed)

    concepts = parse_lexicon()
    paths = sorted({c.path for c in concepts})
    held_out = set(rng.sample(paths, round(HELD_OUT_CATEGORY_SHARE * len(paths))))
    test_langs = {k: v for k, v in DEV_LANG_WEIGHTS.items() if k != DEV_ONLY_LANG}
    splits = {
        "train": Split([c for c in concepts if c.path not in held_out], TRAIN_LANG_WEIGHTS),
        "dev": Split(concepts, DEV_LANG_WEIGHTS),
        "test": Split(concepts, test_langs, labelled=False),
    }
    sizes = {"train": args.train, "dev": args.dev, "test": args.test}
    out = Path(args.out)
    for task, make_rows, target_field in (("QC", make_qc_rows, "category_path"), ("QI", make_qi_rows, "item_title")):
        used = set()  # query wordings taken by this task's files
        for name, split in splits.items():
            n = sizes[name]
            n_empty, n_null = (5, 3 if task == "QI" else 0) if name == "train" else (0, 0)
            rows = make_rows(rng, split, n - n_empty - n_null, used)
            rows += _edge_rows(rng, rows, n_empty, n_null)
            records = to_records(rng, rows, target_field, split.labelled, LABEL_NOISE if split.labelled else 0.0)
            path = out / f"{name}_{task}.txt"
            write_jsonl(path, records)
            labels = [r["label"] for r in records if "label" in r]
            rate = f", {sum(labels) / len(labels):.1%} positive" if labels else ", unlabelled"
            langs = len({r["language"] for r in records})
            print(f"{path}: {len(records)} rows{rate}, {langs} languages")


if __name__ == "__main__":
    main()
