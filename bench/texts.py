"""Known texts of the generated corpus (original prose written for this benchmark; no numbers, so
that scoring does not depend on how a model spells them)."""

MONOLOGUE = [
    "Good morning, and thank you all for coming. Today I want to talk about the old seaside town where I grew up, "
    "and about the people who kept it alive through good years and bad ones. It is a small place, with narrow streets "
    "that climb from the water to the church on the hill, and every street has a story.",
    "The first thing you notice when you arrive is the smell of salt and wood smoke. The fishing boats leave before "
    "sunrise and come back in the early afternoon, and the whole town seems to wait for them. When the weather turns, "
    "the families stand on the stone wall and watch the grey water until every boat is safely tied to the pier.",
    "My grandmother ran the bakery at the corner of the market square. She started work long before dawn, and by the "
    "time the children walked to school, the windows were full of warm bread and sweet rolls. She used to say that a "
    "town is held together by the small things people do for each other, and she believed it with her whole heart.",
    "In winter the storms were hard on everyone. The wind came off the sea with such force that the shutters rattled "
    "all night, and the waves threw stones across the road. Nobody complained very much. People carried food to the "
    "older people, repaired each other's roofs, and sat together in the kitchen telling stories while the candles "
    "burned low.",
    "Summer was a different world. Visitors came from the city with their cameras and their bright umbrellas, and the "
    "restaurants put tables out on the pavement. The children sold lemonade and shells, and the fishermen took people out "
    "to see the seals on the rocks beyond the lighthouse. For a few weeks the town was loud and busy and happy.",
    "The lighthouse deserves a story of its own. For many years it was kept by a quiet man who lived there with his "
    "dog and a shelf of old books. He climbed the spiral stairs every evening to light the lamp, and he wrote down the "
    "weather in a thick notebook. When the light was finally made automatic, he gave the notebooks to the library, "
    "where you can still read them today.",
    "Of course, the town has changed. Many young people moved away to find work, and some of the old houses stood empty "
    "for a long time. But in the last few years something surprising has happened. Families have started to come back, "
    "the school has opened a new classroom, and the market is crowded again on Saturday mornings.",
    "Part of the reason is the new ferry, which makes the journey to the city much shorter. Another part is the "
    "internet, which lets people work from a kitchen table with a view of the sea. But I think the real reason is "
    "simpler. People want to live in a place where people know their names and where the evening is quiet enough "
    "to hear the water.",
    "When I go back now, I walk the same streets I walked as a child. The bakery is run by my cousin, the bread is "
    "still warm in the morning, and the boats still leave before the sun comes up. The town has learned to change "
    "without losing itself, and I think that is a lesson for all of us.",
    "There is also the music. On Friday evenings a small band plays in the hall behind the church, with a fiddle, "
    "an accordion and a drum that is older than anyone in the room. Nobody is a professional, and nobody cares. "
    "People dance until late, and the children fall asleep on the coats piled in the corner.",
    "I should say something about the food, because every visitor asks about it. The soup is thick and full of fish "
    "and potatoes, the bread is dark and heavy, and there is always a cake for somebody's birthday. Recipes are not "
    "written down. They are passed from one kitchen to the next, and every family claims that theirs is the best.",
    "The sea, of course, is never far from anyone's mind. It feeds the town, and sometimes it takes from it. On the "
    "wall of the church there is a list of names of the sailors who did not come home, and every year, on a calm "
    "evening in autumn, the whole town walks down to the water and lays flowers on the waves.",
    "So, the next time you are planning a trip, think about the small places at the edge of the map. Walk slowly, talk "
    "to the people you meet, and listen to their stories. You may find that the most interesting journeys are the ones "
    "that take you somewhere quiet. Thank you for listening, and I am happy to answer your questions.",
]

# Short utterances for the long-silence recording (one voice, separated by 5 to 30 seconds of room tone).
UTTERANCES = [
    "Hello, this is a short test of the recording system.",
    "The meeting will start again after a short break.",
    "Please remember to bring the blue folder with the signed papers.",
    "I think the weather will be better this afternoon.",
    "Could somebody open the window, it is getting warm in here.",
    "We are almost finished, thank you for your patience.",
    "That is everything for today, see you all next week.",
]

# Continuous speech without pauses (no punctuation inside, so the synthesizer does not stop): it crosses
# every cut point a planner can choose, which is what the overlap-and-align merge has to survive.
BOUNDARY_STRESS = [
    "the train left the station slowly and rolled along the river past the old mill and the green fields where "
    "horses were running beside the fence while the passengers opened their newspapers and the conductor walked "
    "through the carriages checking every ticket with a friendly word for each passenger",
    "in the kitchen the cook was preparing a large pot of vegetable soup with carrots onions potatoes and fresh "
    "herbs from the garden and the smell drifted through the open door into the dining room where the guests were "
    "waiting patiently for their lunch and talking about the long journey ahead",
    "the library on the main street has a reading room with tall windows and wooden tables where students sit "
    "quietly with their books and their notes while the librarian sorts the returned novels onto a cart and "
    "answers questions about maps history and local families",
    "every spring the farmers plant rows of corn and beans along the valley and the children help them carry water "
    "from the well in heavy buckets until the sun goes down behind the mountains and the whole village gathers in "
    "the square to share bread cheese and stories",
    "on the hill above the port stands an old white house with a red door and a garden full of roses where "
    "an artist paints the boats every morning while her cat sleeps on the warm wall and the gulls circle above "
    "the water looking for fish and scraps from the market",
    "the museum opened a new room for old clocks and watches and visitors can listen to the ticking of hundreds "
    "of small machines while a guide explains how each one was built by hand with tiny springs wheels and screws "
    "that took months of patient work to finish",
    "after the storm the villagers came out with brooms and shovels to clear the branches from the road and "
    "somebody brought a big kettle of tea and a basket of sandwiches so that everyone could rest for a while "
    "before they started repairing the broken fence",
    "the young doctor drove through the snow to visit a farmer who had fallen on the ice and she stayed with "
    "the family until the evening checking his arm and drinking coffee by the stove while the children asked "
    "her questions about the hospital in the city",
]

# Vietnamese: everyday sentences (espeak-ng's Northern Vietnamese voice), enough that a few minutes of
# speech repeat none: whisper spells a sentence it has just written the same way again, right or wrong.
VIETNAMESE = [
    "Hôm nay trời đẹp và có nhiều nắng.",
    "Chúng tôi đi chợ mua rau, cá và trái cây.",
    "Buổi chiều, cả gia đình cùng nhau ăn cơm.",
    "Em gái tôi đang học tiếng Anh ở trường.",
    "Ngày mai chúng ta sẽ đi thăm ông bà ở quê.",
    "Cảm ơn các bạn đã lắng nghe.",
    "Cuộc họp sẽ bắt đầu lúc chín giờ sáng.",
    "Anh ấy làm việc ở một công ty phần mềm.",
    "Mùa hè năm nay nóng hơn năm ngoái.",
    "Xin vui lòng gửi báo cáo trước thứ sáu.",
    "Con mèo đang ngủ trên ghế.",
    "Tôi thích uống cà phê sữa đá vào buổi sáng.",
    "Thư viện thành phố mở cửa đến tám giờ tối.",
    "Chúng ta cần thêm thời gian để hoàn thành dự án.",
    "Bác sĩ khuyên tôi nên tập thể dục mỗi ngày.",
    "Đường phố Hà Nội rất đông xe máy.",
    "Mẹ tôi nấu phở rất ngon.",
    "Học sinh được nghỉ hè vào tháng sáu.",
    "Chuyến tàu đến Huế khởi hành lúc bảy giờ.",
    "Giá xăng đã tăng trong tuần này.",
    "Bạn có thể nói chậm hơn một chút được không?",
    "Cô giáo đang giảng bài về lịch sử Việt Nam.",
    "Trời mưa to nên chúng tôi ở nhà xem phim.",
    "Công viên gần nhà tôi có nhiều cây xanh.",
    "Ông tôi năm nay đã tám mươi tuổi.",
    "Chúng tôi sẽ tổ chức tiệc sinh nhật vào cuối tuần.",
    "Điện thoại của tôi hết pin rồi.",
    "Nhà hàng này phục vụ món ăn miền Nam.",
    "Tôi đã đọc xong cuốn sách đó hôm qua.",
    "Bóng đá là môn thể thao được yêu thích nhất.",
    "Hãy tắt đèn khi ra khỏi phòng.",
    "Người dân ở đây rất thân thiện và mến khách.",
    "Kết quả kiểm tra sẽ có vào tuần sau.",
    "Chị ấy đi làm bằng xe buýt mỗi sáng.",
    "Vịnh Hạ Long là một di sản thiên nhiên thế giới.",
    "Chúng tôi trồng lúa và nuôi cá ở nông thôn.",
    "Đừng quên mang theo áo mưa nhé.",
    "Giáo sư sẽ trả lời câu hỏi sau buổi thuyết trình.",
    "Tết Nguyên Đán là ngày lễ quan trọng nhất trong năm.",
    "Bệnh viện mới có hơn năm trăm giường.",
]
